// One suite every runtime backend must pass: bwrap, runc and crun run the same tasks and programs
// with the same verdicts, walls and cleanliness. Each backend has its own cgroup subtree and
// scratch dir, so the leftover check sees only what that backend's runs made.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectGarbage, execProgram, runTask } from '../../src/index.js';
import type { PolicyInput } from '../../src/config/policy.js';
import { runtimeFor, type RuntimeName } from '../../src/runtime/index.js';
import { fixture, leftovers, testHost } from '../helpers/host.js';
import { expectLockedDown } from '../helpers/probe.js';

const MiB = 1024 * 1024;
// PAWL_RUNTIMES=runc,crun picks backends (the v2 VM runs the OCI ones: `npm run test:vm`-style,
// scripts/vm-test). Under the VM's emulated CPU every time bound is scaled by SLOW.
const RUNTIMES = (process.env.PAWL_RUNTIMES?.split(',') ?? ['bwrap', 'runc', 'crun']) as RuntimeName[];
const SLOW = process.env.PAWL_IN_VM ? 10 : 1;
const RUNS = 100;
const ADD = fixture('../../../examples/add');
const BUSYBOX = { src: '/usr/bin/busybox', dst: '/bin/busybox' };
const DIST = join(import.meta.dirname, '..', '..', 'dist', 'index.js');

/** Zombie children of this process (an OCI init it failed to reap). */
function zombieChildren(): number[] {
  const pids = readdirSync('/proc/self/task').flatMap((t) => readFileSync(`/proc/self/task/${t}/children`, 'utf8').trim().split(' ').filter(Boolean));
  return pids.map(Number).filter((pid) => /^Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? ''));
}

describe.each(RUNTIMES)('the %s backend', (runtime) => {
  const host = testHost(`conf-${runtime}`);
  const with_ = (p: PolicyInput = {}): PolicyInput => ({ ...p, runtime });
  afterAll(async () => {
    expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
    expect(await runtimeFor(runtime).list(host)).toEqual([]);
    expect(zombieChildren()).toEqual([]);
  });

  it('returns the sum of the addition task, with usage from its cgroup', async () => {
    const r = await runTask(ADD, { input: { num1: 2, num2: 40 }, host, policy: with_() });
    expect(r).toMatchObject({ status: 'succeeded', output: { sum: 42 }, runtime, exit_code: 0, signal: null });
    expect(r.usage.peak_memory_bytes).toBeGreaterThan(0);
    expect(r.usage.cpu_ms).toBeGreaterThan(0);
  });

  it('keeps stdout noise and stderr apart from the result', async () => {
    const r = await runTask(fixture('noisy'), { input: { a: 20, b: 22 }, host, policy: with_() });
    expect(r.output).toEqual({ sum: 42, executionId: r.id });
    expect(r.stdout).toBe('{"sum": -1}\nno newline at the end');
    expect(r.stderr).toBe('warnings go to stderr\n');
  });

  it('ends a memory bomb under 64 MB as ResourceExhausted/memory, peak near the limit', async () => {
    const t0 = Date.now();
    const r = await runTask(fixture('membomb'), { trustLevel: 'untrusted', host, policy: with_() });
    expect(Date.now() - t0).toBeLessThan(5000 * SLOW);
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'memory' });
    expect(r.usage.peak_memory_bytes).toBeGreaterThan(56 * MiB);
    expect(r.usage.peak_memory_bytes).toBeLessThanOrEqual(64 * MiB);
  });

  it('ends a fork bomb as ResourceExhausted/pids', async () => {
    const r = await runTask(fixture('forkbomb'), { trustLevel: 'untrusted', host, policy: with_({ resources: { wallTime: '20s' } }) });
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'pids' });
    expect(r.usage.wall_ms).toBeLessThan(15_000 * SLOW);
  });

  it('ends while(true){} as Timeout at the wall time', async () => {
    const r = await runTask(fixture('spin'), { host, policy: with_({ resources: { wallTime: '1500ms', cpuPercent: 100 } }) });
    expect(r.error).toMatchObject({ kind: 'Timeout', limit: 'wall', limit_value: 1500 });
    expect(r.usage.wall_ms).toBeGreaterThanOrEqual(1500);
    expect(r.usage.wall_ms).toBeLessThan(1500 + 1500 * SLOW);
  });

  it('ends a bursty spinner at its CPU-time limit', async () => {
    const r = await runTask(fixture('burst'), { host, policy: with_({ resources: { wallTime: '30s', cpuTime: '1s', cpuPercent: 100 } }) });
    expect(r.error).toMatchObject({ kind: 'Timeout', limit: 'cpu', limit_value: 1000 });
    expect(r.usage.wall_ms).toBeLessThan(10_000 * SLOW);
  });

  it('holds a spinner to its CPU share', async () => {
    const r = await runTask(fixture('spin'), { host, policy: with_({ resources: { wallTime: '2s', cpuPercent: 25 } }) });
    const share = r.usage.cpu_ms / r.usage.wall_ms;
    expect(share).toBeGreaterThan(0.1);
    expect(share).toBeLessThan(0.4);
  });

  it('runs as uid 1000 without capabilities on a read-only root that hides the host', async () => {
    expectLockedDown(await runTask(fixture('probe'), { host, policy: with_() }));
  });

  it('reports a write to a read-only path as FileSystemBlocked with the path', async () => {
    const r = await runTask(fixture('writeetc'), { host, policy: with_() });
    expect(r.error?.kind).toBe('FileSystemBlocked');
    expect(r.violations).toContainEqual({ kind: 'filesystem', detail: expect.stringContaining('/etc/passwd'), source: 'task' });
  });

  it('blocks paths outside the sandbox and keeps its /proc from showing kernel internals', async () => {
    const r = await execProgram(['/bin/busybox', 'sh', '-c', 'ls /root /home /var /sys 2>&1; cat /proc/kcore 2>&1 | head -c 20; echo; echo x > /proc/sys/kernel/hostname; echo rc=$?'], {
      host, policy: with_({ filesystem: { binds: [BUSYBOX] } }),
    });
    expect(r.stdout).toMatch(/\/root.*No such file/);
    expect(r.stdout).toMatch(/\/sys.*No such file/);
    expect(r.stdout).not.toMatch(/ELF/);
    expect(r.stdout).toContain('rc=1');
  });

  it('passes a program\'s exit status and output through, binds read-only unless asked', async () => {
    const r = await execProgram(['/bin/busybox', 'sh', '-c', 'echo hi; id -u; echo bye > /bin/x; exit 3'], { host, policy: with_({ filesystem: { binds: [BUSYBOX] } }) });
    expect(r).toMatchObject({ exit_code: 3, signal: null, runtime });
    expect(r.error?.kind).toBe('TaskError');
    expect(r.stdout).toBe('hi\n1000\n');
    expect(r.stderr).toMatch(/Read-only file system/);
  });

  it('stops a shell fork bomb as ResourceExhausted/pids', async () => {
    const r = await execProgram(['/bin/busybox', 'sh', '-c', 'b() { b | b & }; b; sleep 30'], {
      trustLevel: 'untrusted', host, policy: with_({ filesystem: { binds: [BUSYBOX] }, resources: { wallTime: '20s' } }),
    });
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'pids' });
  });

  it('kills an untrusted program at a blocked system call as SecurityViolation naming the call (seccomp)', async () => {
    const r = await execProgram(['/bin/busybox', 'unshare', '-U', 'true'], { trustLevel: 'untrusted', host, policy: with_({ filesystem: { binds: [BUSYBOX] } }) });
    expect(r).toMatchObject({ status: 'failed', signal: 'SIGSYS', error: { kind: 'SecurityViolation', syscall: 'unshare' } });
    expect(r.violations).toContainEqual({ kind: 'syscall', detail: 'unshare', source: 'supervisor' });
  });

  it('refuses a blocked system call with EPERM at trust level limited (seccomp)', async () => {
    const r = await execProgram(['/bin/busybox', 'sh', '-c', 'unshare -U true; echo rc=$?'], { host, policy: with_({ filesystem: { binds: [BUSYBOX] } }) });
    expect(r.stderr).toMatch(/Operation not permitted/);
    expect(r.stdout).toBe('rc=1\n');
  });

  it(`leaves nothing behind after ${RUNS} runs, killed ones included`, async () => {
    const verdicts = new Map<string, number>();
    for (let i = 0; i < RUNS; i++) {
      const r =
        i % 10 === 3
          ? await runTask(fixture('spin'), { host, policy: with_({ resources: { wallTime: '200ms' } }) })
          : i % 10 === 7
            ? await runTask(fixture('membomb'), { host, policy: with_({ resources: { memory: '64MB' } }) })
            : await runTask(fixture('noisy'), { input: { a: i, b: 1 }, host, policy: with_() });
      const key = r.status === 'succeeded' ? 'succeeded' : `${r.error?.kind}/${r.error?.resource ?? r.error?.limit ?? ''}`;
      verdicts.set(key, (verdicts.get(key) ?? 0) + 1);
    }
    expect(Object.fromEntries(verdicts)).toEqual({ succeeded: 80, 'Timeout/wall': 10, 'ResourceExhausted/memory': 10 });
    expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
    expect(zombieChildren()).toEqual([]);
  }, 120_000 * SLOW);
});

// A supervisor that runs `node -e` forever in a sandbox and prints the run id once it runs.
const SUPERVISOR = `
import { Sandbox, hostConfig, resolvePolicy } from ${JSON.stringify(DIST)};
const [runtime, cgroupParent, runDir] = process.argv.slice(1);
const host = hostConfig({ cgroupParent, runDir });
const policy = resolvePolicy({ overrides: { runtime, resources: { wallTime: '120s' } } });
const sb = await Sandbox.start({ policy, host, mode: 'program', command: ['/usr/bin/node', '-e', 'setInterval(() => {}, 1000)'] });
console.log(sb.id);
await sb.result();
`;

describe.each(RUNTIMES.filter((r) => r !== 'bwrap'))('pawl gc after a %s supervisor was killed', (runtime) => {
  const host = testHost(`conf-gc-${runtime}`);

  it('removes the container the dead supervisor left running, its cgroup and scratch dir, and every process', async () => {
    const sup = spawn(process.execPath, ['--input-type=module', '-e', SUPERVISOR, runtime, host.cgroupParent, host.runDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const id = await new Promise<string>((resolve, reject) => {
      sup.stdout.once('data', (b: Buffer) => resolve(b.toString().trim()));
      sup.once('exit', (code) => reject(new Error(`supervisor exited with ${code} before the run started`)));
    });
    expect(await runtimeFor(runtime).list(host)).toMatchObject([{ id, runtime, state: 'running', owner: sup.pid }]);
    sup.kill('SIGKILL');
    await new Promise((r) => sup.once('exit', r));
    // Nothing ties a container to its supervisor: it is still running.
    const left = await leftovers(host);
    expect(left.processes.length).toBeGreaterThan(0);
    expect(left.scratch).toEqual([id]);
    expect(await runtimeFor(runtime).list(host)).toMatchObject([{ id, state: 'running' }]);

    const report = await collectGarbage(host);
    expect(report.containers).toEqual([`${runtime}:${id}`]);
    expect(report.scratch).toEqual([id]);
    expect(await runtimeFor(runtime).list(host)).toEqual([]);
    expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
    expect(zombieChildren()).toEqual([]);
  });
});
