// The shim really is the process that ends up running the program: the pid it writes into every
// cgroup.procs is the pid of the program it execs, and that program runs under the rlimits the
// supervisor set on the shim before releasing it (never before). (Plain files stand in for cgroup.procs.)
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ensureShim, GO_FD, releaseShim, shimCommand, SHIM_FAILED } from '../../src/runtime/bwrap/shim.js';
import { loadLibc } from '../../src/util/libc.js';

const rlimits = { nofile: 64, nproc: 100, fsize: 1 << 20, core: 0, cpu: 5 };

/** The shim started as the runtime starts it: its release pipe at GO_FD; `go` gets our end. */
function startShim(files: string[], hostId: number | null, script: string, go: (pid: number, fd: number) => void, opts: { nofile?: number; groups?: string } = {}) {
  const cmd = shimCommand(files, opts.nofile ?? rlimits.nofile, hostId, { file: '/bin/sh', args: ['-c', script] });
  const [ours, theirs] = loadLibc().socketpair()!;
  const stdio = Array.from({ length: GO_FD + 1 }, (_, fd) => (fd === 1 || fd === 2 ? 'pipe' : fd === GO_FD ? theirs : 'ignore')) as ('pipe' | 'ignore' | number)[];
  // opts.groups: started with these supplementary groups (as root), for the shim to drop.
  const argv = opts.groups ? ['/usr/bin/setpriv', `--groups=${opts.groups}`, '--', cmd.file, ...cmd.args] : [cmd.file, ...cmd.args];
  const child = spawn(argv[0]!, argv.slice(1), { stdio });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b) => (stdout += b));
  child.stderr!.on('data', (b) => (stderr += b));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  // Our copy of the shim's end is held until it is released, as the runtime holds it (bwrap/index.ts).
  try {
    go(child.pid!, ours);
  } finally {
    closeSync(theirs);
  }
  return done;
}

const dir = () => mkdtempSync(join(tmpdir(), 'pawl-shim-'));

describe('shim', () => {
  beforeAll(() => ensureShim(), 60_000);

  it('writes its own pid into each procs file, then execs the command in the same process, under the rlimits set on it', async () => {
    const d = dir();
    const files = [join(d, 'a'), join(d, 'b')];
    for (const f of files) writeFileSync(f, '');
    const r = await startShim(files, null, 'echo $$; ulimit -n; ulimit -c; ulimit -t; ls /proc/self/fd', (pid, fd) => releaseShim(pid, rlimits, null, fd));
    const [pid, nofile, core, cpu, ...fds] = r.stdout.trim().split('\n');
    expect(r.code).toBe(0);
    expect(readFileSync(files[0]!, 'utf8').trim()).toBe(pid);
    expect(readFileSync(files[1]!, 'utf8').trim()).toBe(pid);
    expect(nofile).toBe('64');
    expect(core).toBe('0');
    expect(cpu).toBe('5');
    // Its release pipe is closed before the exec: the sandbox never holds it.
    expect(fds).not.toContain(String(GO_FD));
  });

  // With a host id the shim drops its groups and ids, which needs root.
  it.runIf(process.getuid?.() === 0)('sets soft and hard limits alike, every one of them (nproc only with a host id of its own)', async () => {
    const limits = (hostId: number | null) =>
      startShim([], hostId === null ? null : process.getuid!(), 'cat /proc/self/limits', (pid, fd) => releaseShim(pid, rlimits, hostId, fd)).then((r) => r.stdout);
    const line = (text: string, name: string) => text.split('\n').find((l) => l.startsWith(name))!.split(/\s{2,}/).slice(1, 3);
    const own = await limits(process.getuid!());
    expect(line(own, 'Max open files')).toEqual(['64', '64']);
    expect(line(own, 'Max file size')).toEqual([String(1 << 20), String(1 << 20)]);
    expect(line(own, 'Max core file size')).toEqual(['0', '0']);
    expect(line(own, 'Max cpu time')).toEqual(['5', '5']);
    expect(line(own, 'Max processes')).toEqual(['100', '100']);
    const shared = await limits(null);
    expect(line(shared, 'Max processes')).not.toEqual(['100', '100']);
  });

  it.runIf(process.getuid?.() === 0)('runs the command as the host id alone: uid and gid, no supplementary groups, no capabilities', async () => {
    const r = await startShim([], 612345, 'grep -E "^(Uid|Gid|Groups|CapEff|CapPrm):" /proc/self/status', (pid, fd) => releaseShim(pid, rlimits, 612345, fd), { groups: '4,5' });
    expect(r.code).toBe(0);
    const status = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(':').map((x) => x.trim())));
    expect(status.Uid).toBe('612345\t612345\t612345\t612345');
    expect(status.Gid).toBe('612345\t612345\t612345\t612345');
    expect(status.Groups).toBe('');
    expect(status.CapEff).toBe('0000000000000000');
    expect(status.CapPrm).toBe('0000000000000000');
  });

  it('fails with its own status and never runs the command when a cgroup cannot be entered', async () => {
    const d = dir();
    const marker = join(d, 'ran');
    const r = await startShim([join(d, 'missing', 'cgroup.procs')], null, `touch ${marker}`, (pid, fd) => releaseShim(pid, rlimits, null, fd));
    expect(r.code).toBe(SHIM_FAILED);
    expect(r.stderr).toMatch(/pawl-shim: cannot enter cgroup/);
    expect(existsSync(marker)).toBe(false);
  });

  it('never runs the command unless released: the release pipe\'s end is a refusal', async () => {
    const d = dir();
    const marker = join(d, 'ran');
    const r = await startShim([], null, `touch ${marker}`, (_pid, fd) => closeSync(fd));
    expect(r.code).toBe(SHIM_FAILED);
    expect(r.stderr).toMatch(/pawl-shim: not released by the supervisor/);
    expect(existsSync(marker)).toBe(false);
  });

  it('a shim that ended before its release is not the release\'s error: the write finds no reader and is dropped', () => {
    // A live process of ours stands in for the shim; its release pipe has no reader left.
    const sleeper = spawn('/bin/sleep', ['5'], { stdio: 'ignore' });
    const [ours, theirs] = loadLibc().socketpair()!;
    closeSync(theirs);
    try {
      expect(() => releaseShim(sleeper.pid!, rlimits, null, ours)).not.toThrow();
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('refuses to run the command under fewer limits than asked: a file limit the shell cannot set', async () => {
    const d = dir();
    const marker = join(d, 'ran');
    // Above fs.nr_open no process may have it, CAP_SYS_RESOURCE or not.
    const tooMany = Number(readFileSync('/proc/sys/fs/nr_open', 'utf8')) + 1;
    const r = await startShim([], null, `touch ${marker}`, (pid, fd) => releaseShim(pid, rlimits, null, fd), { nofile: tooMany });
    expect(r.code).toBe(SHIM_FAILED);
    expect(r.stderr).toMatch(new RegExp(`pawl-shim: cannot set the limit of open files to ${tooMany}`));
    expect(existsSync(marker)).toBe(false);
  });

  // Raising a hard limit needs CAP_SYS_RESOURCE, which root lacks on these hosts (HOST-FACTS.md).
  const capSysResource = (BigInt(`0x${/^CapEff:\s+(\w+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`) >> 24n) & 1n;
  it.runIf(capSysResource === 0n)('names a limit the kernel refuses, and the shim then runs nothing', async () => {
    const d = dir();
    const marker = join(d, 'ran');
    let thrown: Error | null = null;
    const r = await startShim([], null, `touch ${marker}`, (pid, fd) => {
      // The shim's hard CPU limit lowered to 5 s first; the run then asks for 31.
      const five = Buffer.alloc(16);
      five.writeBigUInt64LE(5n, 0);
      five.writeBigUInt64LE(5n, 8);
      expect(loadLibc().prlimit(pid, 0, five, null)).toBe(0);
      try {
        releaseShim(pid, { ...rlimits, cpu: 31 }, null, fd);
      } catch (e) {
        thrown = e as Error;
      }
    });
    expect(thrown!.message).toMatch(/cannot set RLIMIT_CPU to 31: EPERM/);
    expect(r.code).toBe(SHIM_FAILED);
    expect(existsSync(marker)).toBe(false);
  });
});
