// pawl's diagnostics go through pino on stderr, at PAWL_LOG_LEVEL (default warn), and never reach
// stdout (which carries results). Run in a child process on the built library, as the CLI runs.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const LOG = join(import.meta.dirname, '..', '..', 'dist', 'util', 'log.js');
const script = `const { log } = await import(${JSON.stringify(LOG)}); log().debug('a debug line'); log().info('an info line'); log().warn({ run: 'x1' }, 'a warning');`;

function logs(level?: string): { stdout: string; lines: Record<string, unknown>[] } {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(level === undefined ? {} : { PAWL_LOG_LEVEL: level }) };
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
  expect(r.status).toBe(0);
  return { stdout: r.stdout, lines: r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('diagnostics', () => {
  it('are warnings only by default, as JSON lines on stderr, nothing on stdout', () => {
    const { stdout, lines } = logs();
    expect(stdout).toBe('');
    expect(lines).toEqual([expect.objectContaining({ level: 40, name: 'pawl', run: 'x1', msg: 'a warning' })]);
  });

  it('PAWL_LOG_LEVEL=debug shows the debug lines too; an unknown level is said and warn is used', () => {
    expect(logs('debug').lines.map((l) => l.msg)).toEqual(['a debug line', 'an info line', 'a warning']);
    expect(logs('silent').lines).toEqual([]);
    const bad = logs('loud').lines.map((l) => l.msg);
    expect(bad).toEqual([expect.stringMatching(/PAWL_LOG_LEVEL="loud" is not one of .*; using warn/), 'a warning']);
  });
});
