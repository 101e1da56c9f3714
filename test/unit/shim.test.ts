// The shim really is the process that ends up running the program: the pid it writes into every
// cgroup.procs is the pid of the program it execs. (Plain files stand in for cgroup.procs.)
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { shimCommand, SHIM_FAILED } from '../../src/runtime/bwrap/shim.js';

const rlimits = { nofile: 64, nproc: 100, fsize: 1 << 20, core: 0, cpu: 5 };

describe('shim', () => {
  it('writes its own pid into each procs file, then execs the command in the same process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-shim-'));
    const files = [join(dir, 'a'), join(dir, 'b')];
    for (const f of files) writeFileSync(f, '');
    const cmd = shimCommand(files, rlimits, null, { file: '/bin/sh', args: ['-c', 'echo $$; ulimit -n; ulimit -c'] });
    const r = await execa(cmd.file, cmd.args);
    const [pid, nofile, core] = r.stdout.split('\n');
    expect(readFileSync(files[0]!, 'utf8').trim()).toBe(pid);
    expect(readFileSync(files[1]!, 'utf8').trim()).toBe(pid);
    expect(nofile).toBe('64');
    expect(core).toBe('0');
  });

  it('fails with its own status and never runs the command when a cgroup cannot be entered', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-shim-'));
    const marker = join(dir, 'ran');
    const cmd = shimCommand([join(dir, 'missing', 'cgroup.procs')], rlimits, null, { file: '/bin/sh', args: ['-c', `touch ${marker}`] });
    const r = await execa(cmd.file, cmd.args, { reject: false });
    expect(r.exitCode).toBe(SHIM_FAILED);
    expect(r.stderr).toMatch(/pawl-shim: cannot enter cgroup/);
    expect(() => readFileSync(marker)).toThrow();
  });
});
