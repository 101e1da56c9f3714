// Output through a pipe arrives whole (issue 9.2): a pipe holds 64 KiB, so a CLI that exits
// before its stdout drains hands a reader exactly 65536 bytes of cut JSON. A file or a terminal
// hides this, so these tests read the CLI's stdout as a pipe, the way `| jq` or a platform does.
// Also (issue 10.5): `pawl exec`'s result never goes where the program can write first.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The shipped bin (the bundle: package.json's "bin").
const CLI = join(import.meta.dirname, '..', '..', 'dist', 'bundle', 'pawl.mjs');
const tag = process.env.PAWL_TEST_TAG ? `-${process.env.PAWL_TEST_TAG}` : '';
const env = { ...process.env, PAWL_CGROUP_PARENT: `pawl-clipipe${tag}`, PAWL_STATE_DIR: '/var/lib/pawl' };
const BUSYBOX = ['--ro-bind', '/usr/bin/busybox', '/bin/busybox'];

/**
 * Run the built CLI with stdout read by this process. Node's 'pipe' is a socketpair, so by
 * default the CLI's stdout is a real pipe(2) to `cat` (`pawl ... | cat`), as a shell makes it;
 * `socket` reads it directly, the way a node platform would.
 */
function pawlPiped(args: string[], opts: { via?: 'pipe' | 'socket' } = {}): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const argv = [process.execPath, CLI, ...args];
    const child = opts.via === 'socket'
      ? spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('/bin/bash', ['-c', 'set -o pipefail; "$@" | cat', 'pawl', ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

function bigTask(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pawl-bigresult-'));
  // 1.5 MB of output and 20 MB of console output (kept: 1 MB), both in the result JSON.
  writeFileSync(join(dir, 'main.js'), `function(input) {
  const line = 'y'.repeat(1023);
  for (let i = 0; i < 20 * 1024; i++) console.log(line);
  return { rows: Array.from({ length: 20000 }, (_, i) => ({ i, s: 'x'.repeat(64) })) };
}`);
  writeFileSync(join(dir, 'metadata.json'), JSON.stringify({ name: 'big', timeout: 60000 }));
  return dir;
}

describe('output through a pipe', () => {
  it.each(['pipe', 'socket'] as const)('pawl run: a result over 1 MB read through a %s parses whole', async (via) => {
    const r = await pawlPiped(['run', bigTask(), '--trust', 'trusted'], { via });
    expect(r.stderr).toBe('');
    expect(r.stdout.length).toBeGreaterThan(2 * 1024 * 1024);
    const result = JSON.parse(r.stdout.toString('utf8'));
    expect(result.status).toBe('succeeded');
    expect(result.output.rows).toHaveLength(20000);
    expect(result.stdout.length).toBe(1024 * 1024);
    expect(result.stdout_dropped_bytes).toBe(19 * 1024 * 1024);
    expect(r.code).toBe(0);
  }, 120_000);

  it.each(['pipe', 'socket'] as const)('pawl exec --result /dev/stdout through a %s: 1 MB of program output, then the whole result', async (via) => {
    const r = await pawlPiped(['exec', ...BUSYBOX, '--result', '/dev/stdout', '--', '/bin/busybox', 'sh', '-c', 'head -c 1048576 /dev/zero | tr "\\0" z'], { via });
    expect(r.code).toBe(0);
    const text = r.stdout.toString('utf8');
    expect(text.slice(0, 1048576)).toBe('z'.repeat(1048576));
    expect(JSON.parse(text.slice(1048576))).toMatchObject({ status: 'succeeded', exit_code: 0 });
  }, 60_000);

  it('pawl explain --json and seccomp export through a pipe parse whole', async () => {
    const e = await pawlPiped(['explain', '--json', '--runtime', 'runc']);
    expect(e.code).toBe(0);
    expect(JSON.parse(e.stdout.toString('utf8')).policy.runtime).toBe('runc');
    const s = await pawlPiped(['seccomp', 'export', '--trust', 'untrusted']);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout.toString('utf8')).defaultAction).toBe('SCMP_ACT_ERRNO');
  }, 60_000);
});

describe('pawl exec: where the result goes', () => {
  const FAKE = '{"status":"succeeded","exit_code":0,"fake":true}';
  const attack = ['/bin/busybox', 'sh', '-c', `echo '${FAKE}' >&2; echo '${FAKE}'; exit 3`];

  it('without --result, the result is not on the program\'s stderr: a file the program cannot reach, named in one line', async () => {
    const r = await pawlPiped(['exec', ...BUSYBOX, '--', ...attack]);
    expect(r.code).toBe(1);
    // stderr holds exactly what the program wrote, then pawl's one line naming the file.
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(FAKE);
    expect(lines).toHaveLength(2);
    const m = /^pawl: result in (\S+)$/.exec(lines[1]!);
    expect(m).not.toBeNull();
    const real = JSON.parse(readFileSync(m![1]!, 'utf8'));
    expect(real).toMatchObject({ status: 'failed', exit_code: 3 });
    expect(real.fake).toBeUndefined();
  }, 60_000);

  it('--result-fd N writes the result to an fd the sandbox does not have; fds 0-2 are refused', async () => {
    const got = await new Promise<{ code: number | null; fd3: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, 'exec', ...BUSYBOX, '--result-fd', '3', '--', ...attack], { env, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
      const fd3: Buffer[] = [];
      const err: Buffer[] = [];
      (child.stdio[3] as NodeJS.ReadableStream).on('data', (b: Buffer) => fd3.push(b));
      child.stderr!.on('data', (b: Buffer) => err.push(b));
      child.stdout!.resume();
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, fd3: Buffer.concat(fd3).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    });
    expect(got.code).toBe(1);
    expect(got.stderr).toBe(`${FAKE}\n`);
    expect(JSON.parse(got.fd3)).toMatchObject({ status: 'failed', exit_code: 3 });
    for (const fd of ['1', '2']) {
      const r = await pawlPiped(['exec', ...BUSYBOX, '--result-fd', fd, '--', '/bin/busybox', 'true']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^pawl: --result-fd/);
    }
    expect(existsSync(CLI)).toBe(true);
  }, 60_000);
});
