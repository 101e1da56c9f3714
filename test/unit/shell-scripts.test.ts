// Every shell script of the project (host scripts, CI, the VM's guest init) passes shellcheck.
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
/** Tracked files whose first line names a shell. */
const scripts = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean)
  .filter((f) => !f.includes('node_modules/') && /^#!.*\b(ba|busybox )?sh\b/.test(readFileSync(join(ROOT, f), 'utf8').slice(0, 80).split('\n')[0]!));

describe('shell scripts', () => {
  it('finds the guest init scripts and the host scripts', () => {
    expect(scripts).toEqual(expect.arrayContaining(['.ci/run', 'scripts/setup', 'scripts/vm-test', 'scripts/vm/guest-init', 'scripts/vm/guest-stage2', 'scripts/vm/suite']));
  });

  it.each(scripts)('%s passes shellcheck', (f) => {
    const r = spawnSync('shellcheck', ['--external-sources', f], { cwd: ROOT, encoding: 'utf8' });
    expect(r.error, 'shellcheck is not installed (scripts/setup installs it)').toBeUndefined();
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
