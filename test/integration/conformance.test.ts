// One suite every runtime backend must pass: bwrap, runc and crun run the same tasks and programs
// with the same verdicts, walls and cleanliness. Each backend has its own cgroup subtree and
// scratch dir, so the leftover check sees only what that backend's runs made.
import { createSocket } from 'node:dgram';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectGarbage, execProgram, runTask } from '../../src/index.js';
import type { PolicyInput } from '../../src/config/policy.js';
import { runtimeFor, type RuntimeName } from '../../src/runtime/index.js';
import { DEV_NODES, MASKED_PATHS } from '../../src/plan/layout.js';
import { resolvePolicy } from '../../src/config/resolve.js';
import { explain } from '../../src/supervisor/explain.js';
import { fixture, leftovers, testHost } from '../helpers/host.js';
import { expectLockedDown } from '../helpers/probe.js';
import { startSupervisor } from '../helpers/supervisor.js';

const MiB = 1024 * 1024;
// PAWL_RUNTIMES=runc,crun picks backends (the v2 VM runs the OCI ones: `npm run test:vm`-style,
// scripts/vm-test). Under the VM's emulated CPU every time bound is scaled by SLOW.
const RUNTIMES = (process.env.PAWL_RUNTIMES?.split(',') ?? ['bwrap', 'runc', 'crun']) as RuntimeName[];
const SLOW = process.env.PAWL_IN_VM ? 10 : 1;
// The 100-run leak loop is the host's; 25 runs per backend prove the same in the slow VM.
const RUNS = process.env.PAWL_IN_VM ? 25 : 100;
const ADD = fixture('../../../examples/add');
const BUSYBOX = { src: '/usr/bin/busybox', dst: '/bin/busybox' };

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
    // The sample's own 5 s timeout is the caller's to raise: in the v2 VM this is the file's first
    // run (a cold node under emulation, beside the other lane), which can take longer than that.
    const r = await runTask(ADD, { input: { num1: 2, num2: 40 }, host, policy: with_({ resources: { wallTime: '60s' } }) });
    expect(r, JSON.stringify({ error: r.error, stderr: r.stderr.slice(-300), timings: r.timings_ms })).toMatchObject({ status: 'succeeded', output: { sum: 42 }, runtime, exit_code: 0, signal: null });
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
    // A whole CPU (not untrusted's 25 %): the bomb reaches the limit sooner, which is all this proves.
    const r = await runTask(fixture('forkbomb'), { trustLevel: 'untrusted', host, policy: with_({ resources: { wallTime: '20s', cpuPercent: 100 } }) });
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

  it('holds a spinner to its CPU share (25 %, measured over a steady window after start-up)', async () => {
    const r = await runTask(fixture('share'), { host, policy: with_({ resources: { wallTime: '60s', cpuPercent: 25 } }) });
    expect(r.status).toBe('succeeded');
    // Without the quota the spinner gets a whole core (or half of one on a busy 2-core host).
    const { share } = r.output as { share: number };
    expect(share).toBeGreaterThan(0.18);
    expect(share).toBeLessThan(0.32);
  });

  it('runs as uid 1000 without capabilities on a read-only root that hides the host', async () => {
    expectLockedDown(await runTask(fixture('probe'), { host, policy: with_() }));
  });

  it('reports a write to a read-only path as FileSystemBlocked with the path', async () => {
    const r = await runTask(fixture('writeetc'), { host, policy: with_() });
    expect(r.error?.kind).toBe('FileSystemBlocked');
    expect(r.violations).toContainEqual({ kind: 'filesystem', detail: expect.stringContaining('/etc/passwd'), source: 'task' });
  });

  it('blocks paths outside the sandbox and writes to /proc/sys', async () => {
    const r = await execProgram(['/bin/busybox', 'sh', '-c', 'ls /root /home /var /sys 2>&1; echo x > /proc/sys/kernel/hostname; echo rc=$?'], {
      host, policy: with_({ filesystem: { binds: [BUSYBOX] } }),
    });
    expect(r.stdout).toMatch(/\/root.*No such file/);
    expect(r.stdout).toMatch(/\/sys.*No such file/);
    expect(r.stdout).toContain('rc=1');
  });

  it('gives the program exactly the layout its plan (and `pawl explain`) says: env, cwd, ids, hostname, mounts, /dev', async () => {
    const policy = resolvePolicy({ overrides: with_({ env: { FOO: 'bar' }, filesystem: { binds: [BUSYBOX] } }) });
    const { layout } = await explain(policy, { host, command: ['/usr/bin/node'] });
    const probe = `const fs = require('fs');
      const points = fs.readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\\n').map((l) => l.split(' ')[4]);
      const dev = fs.readdirSync('/dev').filter((n) => fs.lstatSync('/dev/' + n).isCharacterDevice()).sort();
      console.log(JSON.stringify({ env: process.env, cwd: process.cwd(), uid: process.getuid(), gid: process.getgid(), hostname: require('os').hostname(), points, dev }));`;
    const r = await execProgram(['/usr/bin/node', '-e', probe], { host, policy: with_({ env: { FOO: 'bar' }, filesystem: { binds: [BUSYBOX] } }) });
    expect(r.status, r.stderr).toBe('succeeded');
    const seen = JSON.parse(r.stdout) as { env: Record<string, string>; cwd: string; uid: number; gid: number; hostname: string; points: string[]; dev: string[] };
    expect(seen.env).toEqual(layout.env);
    expect(seen.cwd).toBe(layout.cwd);
    expect({ uid: seen.uid, gid: seen.gid }).toEqual(layout.user);
    expect(seen.hostname).toBe(layout.hostname);
    for (const m of layout.mounts) if (m.type !== 'bind' || !m.ifExists) expect(seen.points).toContain(m.dst);
    for (const p of layout.proc.masked.filter((p) => existsSync(p))) expect(seen.points).toContain(p);
    // /dev holds the same device nodes in every backend.
    expect(seen.dev).toEqual([...DEV_NODES].sort());
  });

  it('refuses a bind source that does not exist before any sandbox starts: a PawlError naming it, nothing left', async () => {
    // Sources are opened by the supervisor (without following links) while the run is prepared,
    // so a missing one is refused before the runtime is involved: one typed error, no result.
    await expect(execProgram(['/usr/bin/node', '-e', '0'], { host, policy: with_({ filesystem: { binds: [{ src: '/nonexistent-pawl-src', dst: '/x' }] } }) }))
      .rejects.toMatchObject({ name: 'PawlError', message: expect.stringContaining('/nonexistent-pawl-src') });
  });

  it('masks the /proc entries OCI masks: each is over-mounted, and reads show nothing', async () => {
    // uid 1000 may be refused some of these anyway (kcore, timer_list), so a failed read alone
    // proves nothing: the mask is a mount over each path that exists in this kernel's /proc.
    // /proc/pressure named here too: the whole host's stall figures (and triggers on them).
    const present = [...new Set([...MASKED_PATHS, '/proc/pressure'])].filter((p) => existsSync(p));
    expect(present.length).toBeGreaterThan(0);
    const script = present.map((p) => `echo "== ${p} $(grep -c ' ${p} ' /proc/self/mountinfo) $(cat ${p} 2>/dev/null | wc -c) $(ls -A ${p} 2>/dev/null | wc -l)"`).join('; ');
    const r = await execProgram(['/bin/busybox', 'sh', '-c', script], { host, policy: with_({ filesystem: { binds: [BUSYBOX] } }) });
    const seen = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(' ')).map(([, path, mounts, bytes, entries]) => [path, { mounts: Number(mounts), bytes: Number(bytes), entries: Number(entries) }]));
    for (const p of present) expect(seen[p], `${p}: ${r.stdout}${r.stderr}`).toMatchObject({ mounts: 1, bytes: 0 });
    // A masked dir is an empty mount; a masked file reads as nothing.
    for (const p of present.filter((p) => statSync(p).isDirectory())) expect(seen[p]!.entries).toBe(0);
  });

  it('opens no real socket while the network is off: TCP, UDP and DNS to the host fail fast and reach nothing', async () => {
    const accepted: string[] = [];
    const received: string[] = [];
    const tcp = createServer((s) => {
      accepted.push(String(s.remoteAddress));
      s.destroy();
    });
    const udp = createSocket('udp4', (_msg, from) => received.push(from.address));
    await new Promise<void>((r) => tcp.listen(0, '0.0.0.0', r));
    await new Promise<void>((r) => udp.bind(0, '0.0.0.0', r));
    // Loopback (a separate one inside a network namespace) and the host's own outside addresses.
    const hosts = ['127.0.0.1', ...Object.values(networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4' && !a.internal).map((a) => a!.address)];
    try {
      const r = await runTask(fixture('netprobe'), {
        host, input: { hosts, tcpPort: (tcp.address() as AddressInfo).port, udpPort: udp.address().port }, policy: with_({ network: { mode: 'none' }, resources: { wallTime: '60s' } }),
      });
      expect(r.status, JSON.stringify(r.error)).toBe('succeeded');
      const o = r.output as Record<string, any>;
      await new Promise((res) => setTimeout(res, 200)); // a datagram in flight would land by now
      expect({ accepted, received }).toEqual({ accepted: [], received: [] });
      for (const h of hosts) {
        expect(o.tcp[h], `tcp ${h}`).toMatchObject({ ok: false, code: expect.stringMatching(/^(ECONNREFUSED|ENETUNREACH|EHOSTUNREACH|EACCES|EPERM)$/) });
        expect(o.tcp[h].ms, `tcp ${h}`).toBeLessThan(1000 * SLOW);
        // UDP to the sandbox's own loopback may "succeed" (nothing listens there): what counts is that
        // the host never got it; off loopback there is no route at all.
        if (h !== '127.0.0.1') expect(o.udp[h], `udp ${h}`).toMatchObject({ ok: false });
        expect(o.udp[h].ms).toBeLessThan(1000 * SLOW);
      }
      expect(o.lookup).toMatchObject({ ok: false });
      expect(o.lookup.ms).toBeLessThan(1000 * SLOW);
      expect(o.resolve).toMatchObject({ ok: false });
      expect(o.resolve.ms).toBeLessThan(1000 * SLOW);
    } finally {
      tcp.close();
      udp.close();
    }
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

  it('a process name that looks like audit fields does not hide the kill (the record is the kernel\'s)', async () => {
    const r = await execProgram(['/usr/bin/node', '-e', 'process.title = "sig=0"; require("os").networkInterfaces()'], { trustLevel: 'untrusted', host, policy: with_({}) });
    expect(r).toMatchObject({ status: 'failed', error: { kind: 'SecurityViolation', syscall: 'socket' } });
  });

  it('refuses a blocked system call with EPERM at trust level limited (seccomp)', async () => {
    const r = await execProgram(['/bin/busybox', 'sh', '-c', 'unshare -U true; echo rc=$?'], { host, policy: with_({ filesystem: { binds: [BUSYBOX] } }) });
    expect(r.stderr).toMatch(/Operation not permitted/);
    expect(r.stdout).toBe('rc=1\n');
  });

  it(`leaves nothing behind after ${RUNS} runs, killed ones included`, async () => {
    const verdicts = new Map<string, number>();
    // Two runs at a time (as a supervisor serving several tasks does): the same runs in about half
    // the wall time, and a cleanup that races another run's start is part of what is checked.
    let next = 0;
    const lane = async () => {
      for (let i = next++; i < RUNS; i = next++) {
        const r =
          i % 10 === 3
            ? await runTask(fixture('spin'), { host, policy: with_({ resources: { wallTime: '200ms' } }) })
            : i % 10 === 7
              ? await runTask(fixture('membomb'), { host, policy: with_({ resources: { memory: '64MB' } }) })
              : await runTask(fixture('noisy'), { input: { a: i, b: 1 }, host, policy: with_() });
        const key = r.status === 'succeeded' ? 'succeeded' : `${r.error?.kind}/${r.error?.resource ?? r.error?.limit ?? ''}`;
        verdicts.set(key, (verdicts.get(key) ?? 0) + 1);
      }
    };
    await Promise.all([lane(), lane()]);
    // Every tenth run (3, 13, ...) spins past its wall time, every tenth (7, 17, ...) blows its memory.
    const every10 = (k: number) => Array.from({ length: RUNS }, (_, i) => i).filter((i) => i % 10 === k).length;
    expect(Object.fromEntries(verdicts)).toEqual({ succeeded: RUNS - every10(3) - every10(7), 'Timeout/wall': every10(3), 'ResourceExhausted/memory': every10(7) });
    expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
    expect(zombieChildren()).toEqual([]);
  }, 300_000 * SLOW);
});

describe.each(RUNTIMES)('pawl gc after a %s supervisor was killed', (runtime) => {
  const host = testHost(`conf-gc-${runtime}`);
  const oci = runtime !== 'bwrap';

  it('removes what the dead supervisor left: the container still running, its cgroups, scratch dir and every process', async () => {
    const sup = await startSupervisor(runtime, host);
    expect(await runtimeFor(runtime).list(host)).toMatchObject([{ id: sup.id, runtime, state: 'running', owner: sup.pid }]);
    await sup.kill();
    const left = await leftovers(host);
    expect(left.scratch).toEqual([sup.id]);
    expect(left.cgroups.length).toBeGreaterThan(0);
    // Nothing ties a container to its supervisor: it is still running. A bwrap sandbox dies with
    // its supervisor (--die-with-parent), but its cgroups and scratch dir stay.
    if (oci) {
      expect(left.processes.length).toBeGreaterThan(0);
      expect(await runtimeFor(runtime).list(host)).toMatchObject([{ id: sup.id, state: 'running' }]);
    }

    const report = await collectGarbage(host);
    expect(report.errors).toEqual([]);
    expect(report.containers).toEqual(oci ? [`${runtime}:${sup.id}`] : []);
    expect(report.scratch).toEqual([sup.id]);
    // runc/crun delete their container's cgroups themselves; pawl's own groups are bwrap's.
    expect(report.cgroups).toEqual(oci ? [] : [expect.stringContaining(sup.id)]);
    expect(await runtimeFor(runtime).list(host)).toEqual([]);
    expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
    expect(zombieChildren()).toEqual([]);
  });
});
