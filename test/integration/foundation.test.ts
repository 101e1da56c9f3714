// The foundation's promises, on real bubblewrap and real cgroups.
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execProgram, hostConfig, PawlError, runTask, teardownsSettled } from '../../src/index.js';
import { fixture, leftovers, testHost } from '../helpers/host.js';
import { expectLockedDown } from '../helpers/probe.js';

const host = testHost('it');
const MiB = 1024 * 1024;

afterAll(async () => {
  expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
  // Each bwrap run holds a pidfd on its namespace's init (the kill's handle) until its teardown.
  const pidfds = readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[pidfd]';
    } catch {
      return false;
    }
  });
  expect(pidfds).toEqual([]);
});

describe('a Ratchet task in a bubblewrap sandbox', () => {
  it('returns the sum of the addition task', async () => {
    const r = await runTask(fixture('../../../examples/add'), { input: { num1: 2, num2: 40 }, host });
    expect(r.status).toBe('succeeded');
    expect(r.output).toEqual({ sum: 42 });
    expect(r.runtime).toBe('bwrap');
    expect(r.usage.peak_memory_bytes).toBeGreaterThan(0);
  });

  it('gives the result as soon as it is final and tears the sandbox down after it; with awaitCleanup, only after', async () => {
    const add = fixture('../../../examples/add');
    const early = await runTask(add, { input: { num1: 2, num2: 40 }, host });
    expect(early).toMatchObject({ status: 'succeeded', output: { sum: 42 }, exit_code: 0 });
    // The result came first: the run's scratch dir (removed last) is still there.
    expect(existsSync(join(host.runDir, early.id))).toBe(true);
    await teardownsSettled();
    expect(existsSync(join(host.runDir, early.id))).toBe(false);
    const waited = await runTask(add, { input: { num1: 2, num2: 40 }, host, awaitCleanup: true });
    expect(waited).toMatchObject({ status: 'succeeded', output: { sum: 42 }, exit_code: 0 });
    expect(existsSync(join(host.runDir, waited.id))).toBe(false);
  });

  it('runs task after task on a one-id host range: the next run waits for the teardown still holding the id', async () => {
    const one = hostConfig({ cgroupParent: host.cgroupParent, runDir: host.runDir, hostIdBase: 700_123, hostIdCount: 1 });
    for (let i = 0; i < 3; i++) {
      const r = await runTask(fixture('../../../examples/add'), { input: { num1: i, num2: 1 }, host: one });
      expect(r).toMatchObject({ status: 'succeeded', output: { sum: i + 1 } });
    }
    expect((await leftovers(one)).processes).toEqual([]);
  });

  it('is not confused by stdout noise that looks like a result', async () => {
    const r = await runTask(fixture('noisy'), { input: { a: 20, b: 22 }, host });
    expect(r.status).toBe('succeeded');
    expect(r.output).toMatchObject({ sum: 42, executionId: r.id });
    expect(r.stdout).toContain('{"sum": -1}');
    expect(r.stderr).toContain('warnings go to stderr');
  });

  it('reports a thrown error as TaskError with its name and message', async () => {
    const r = await runTask(fixture('throws'), { input: { num1: -1 }, host });
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ kind: 'TaskError', name: 'ValidationError', message: 'num1 must be positive, got -1' });
    // The task's own frames, none of the harness's (whatever its file is called).
    expect(r.error?.stack).toMatch(/main\.js:2/);
    expect(r.error?.stack).not.toMatch(/\/opt\/pawl\//);
  });

  it('rejects input that does not match input.schema.json as InvalidInput', async () => {
    const r = await runTask(fixture('../../../examples/add'), { input: { num1: 'two' }, host });
    expect(r.error?.kind).toBe('InvalidInput');
    expect(r.error?.details?.join('\n')).toMatch(/num1 must be number|must have required property 'num2'/);
  });

  // runTask starts the sandbox while the schema thread checks the input: the task itself must
  // still never run on input that does not match, and the unused sandbox leaves nothing (afterAll).
  it('never runs the task on input that does not match, though its sandbox was started meanwhile', async () => {
    const marks = mkdtempSync(join(tmpdir(), 'pawl-marker-'));
    chmodSync(marks, 0o777); // the sandbox's own uid writes the mark
    try {
      const policy = { filesystem: { mounts: [{ type: 'bind' as const, source: marks, target: '/marker', readonly: false }] } };
      const bad = await runTask(fixture('marker'), { input: { n: 'two' }, host, policy });
      expect(bad.error?.kind).toBe('InvalidInput');
      expect(existsSync(join(marks, 'ran'))).toBe(false);
      // The same task with input that matches leaves its mark: the check above can fail.
      const good = await runTask(fixture('marker'), { input: { n: 2 }, host, policy });
      expect(good.status).toBe('succeeded');
      expect(readFileSync(join(marks, 'ran'), 'utf8')).toBe('2');
    } finally {
      rmSync(marks, { recursive: true, force: true });
    }
  });

  it('refuses a task whose input schema does not compile as InvalidTask, with the sandbox started meanwhile ended', async () => {
    const task = mkdtempSync(join(tmpdir(), 'pawl-badschema-'));
    try {
      writeFileSync(join(task, 'main.js'), 'function(input) { return input; }');
      writeFileSync(join(task, 'input.schema.json'), JSON.stringify({ type: 'object', properties: { a: { minimum: 'ten' } } }));
      const err = await runTask(task, { input: { a: 1 }, host }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PawlError);
      expect(err).toMatchObject({ kind: 'InvalidTask', message: expect.stringMatching(/input\.schema\.json: not a usable JSON Schema: schema is invalid: data\/properties\/a\/minimum must be number/) });
      // Before a policy problem, as when loading came first (the pool's order too).
      const both = await runTask(task, { input: { a: 1 }, host, trustLevel: 'no-such-level' }).catch((e: unknown) => e);
      expect(both).toMatchObject({ kind: 'InvalidTask' });
    } finally {
      rmSync(task, { recursive: true, force: true });
    }
  });

  // Prepare makes the scratch dir, /workspace's filesystem and the cgroup while the seccomp
  // profile is still being read: a profile that fails then must take all of them with it.
  it('leaves nothing behind when the seccomp profile fails to load while the rest was being made', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-bad-profile-'));
    try {
      writeFileSync(join(dir, 'bad.json'), '{not json');
      const run = execProgram(['/usr/bin/node', '-e', '0'], { host, trustLevel: 'trusted', policy: { security: { seccomp: { profile: join(dir, 'bad.json') } } } });
      await expect(run).rejects.toThrow(/cannot load seccomp profile .*bad\.json/);
      // Anything still being made when the error was thrown would appear meanwhile.
      await new Promise((r) => setTimeout(r, 500));
      expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects output that does not match output.schema.json as InvalidOutput', async () => {
    const r = await runTask(fixture('badoutput'), { host });
    expect(r.error?.kind).toBe('InvalidOutput');
    expect(r.error?.details?.join('\n')).toMatch(/sum/);
  });
});

describe('limits end runs with the right verdict', () => {
  // v1 has no memory.oom.group: a parent whose child the OOM killer took slept on to its clock.
  it('a run whose child the OOM killer took ends then, not at its wall time', async () => {
    const parent = `require('child_process').spawn(process.execPath, ['-e', 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1))'], { stdio: 'ignore' }); setTimeout(() => {}, 60000);`;
    const r = await execProgram(['/usr/bin/node', '-e', parent], { host, policy: { resources: { memory: '96MB', wallTime: '30s' } } });
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'memory' });
    expect(r.usage.wall_ms).toBeLessThan(30_000);
  }, 60_000);


  it('ends a memory bomb under 64 MB as ResourceExhausted/memory within 5 s, peak near the limit', async () => {
    const t0 = Date.now();
    const r = await runTask(fixture('membomb'), { trustLevel: 'untrusted', host });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'memory' });
    expect(r.usage.peak_memory_bytes).toBeGreaterThan(56 * MiB);
    expect(r.usage.peak_memory_bytes).toBeLessThanOrEqual(64 * MiB);
    // The host is untouched: the supervisor is fine and the next run works.
    const next = await runTask(fixture('noisy'), { input: { a: 1, b: 1 }, host });
    expect(next.output).toMatchObject({ sum: 2 });
  });

  it('ends a fork bomb as ResourceExhausted/pids', async () => {
    const r = await runTask(fixture('forkbomb'), { trustLevel: 'untrusted', policy: { resources: { wallTime: '20s' } }, host });
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'pids' });
    expect(r.usage.wall_ms).toBeLessThan(15_000);
  });

  it('ends while(true){} as Timeout at the configured wall time', async () => {
    const r = await runTask(fixture('spin'), { policy: { resources: { wallTime: '1500ms', cpuPercent: 100 } }, host });
    expect(r.error).toMatchObject({ kind: 'Timeout', limit: 'wall', limit_value: 1500 });
    expect(r.usage.wall_ms).toBeGreaterThanOrEqual(1500);
    expect(r.usage.wall_ms).toBeLessThan(3000);
  });

  it('ends a spinner that sleeps between bursts at its CPU-time limit', async () => {
    const r = await runTask(fixture('burst'), { policy: { resources: { wallTime: '30s', cpuTime: '1s', cpuPercent: 100 } }, host });
    expect(r.error).toMatchObject({ kind: 'Timeout', limit: 'cpu', limit_value: 1000 });
    expect(r.usage.cpu_ms).toBeGreaterThanOrEqual(1000);
    expect(r.usage.wall_ms).toBeLessThan(10_000);
  });

  it('ends a task that sleeps 2 s and then spins at its CPU-time limit, though the polls thinned out while it slept', async () => {
    // By 2 s into a run the polls are ~500 ms apart (supervisor/watch.ts); a gap never outlasts
    // what the host's CPUs need to use up the CPU time left, so the spin is caught within ~one
    // base poll of the limit, not half a second of a core later.
    const r = await runTask(fixture('late-spin'), { policy: { resources: { wallTime: '30s', cpuTime: '500ms', cpuPercent: 100 } }, host });
    expect(r.error).toMatchObject({ kind: 'Timeout', limit: 'cpu', limit_value: 500 });
    expect(r.usage.wall_ms).toBeGreaterThan(2000);
    expect(r.usage.cpu_ms).toBeLessThan(500 + 250);
  });

  it('holds a spinner to its CPU share (cpu quota; 25 %, measured over a steady window after start-up)', async () => {
    const r = await runTask(fixture('share'), { policy: { resources: { wallTime: '60s', cpuPercent: 25 } }, host });
    expect(r.status).toBe('succeeded');
    // Without the quota the spinner gets a whole core (or half of one on a busy 2-core host).
    const { share } = r.output as { share: number };
    expect(share).toBeGreaterThan(0.18);
    expect(share).toBeLessThan(0.32);
  });
});

describe('what a hostile task can try on the host side', () => {
  it('a forged reply on fd 4 is InvalidOutput, and the run is still cleaned up', async () => {
    const r = await runTask(fixture('forgereply'), { host });
    expect(r.error).toMatchObject({ kind: 'InvalidOutput', message: expect.stringMatching(/malformed/) });
  });

  it('data hidden past PATH_MAX still counts against the disk limit and is still removed', async () => {
    // Six 1 MiB files, each under RLIMIT_FSIZE (4 MB): /workspace's own filesystem (4 MB) refuses
    // the fifth, so the task never gets to say it wrote them all (the sampled usage watch, which is
    // all a host without loop devices has, would only end it after the sixth).
    const r = await runTask(fixture('deeppath'), { policy: { resources: { diskSpace: '4MB', diskWriteBps: '100MB', wallTime: '60s' } }, host });
    expect(r.stdout).toBe('');
    expect(r.stderr + JSON.stringify(r.error)).toMatch(/ENOSPC|disk space limit/);
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'disk', limit_value: 4 * MiB, message: expect.stringMatching(/reached in \/workspace/) });
    expect(r.usage.wall_ms).toBeLessThan(15_000);
  });
});

describe('disk and cancellation', () => {
  it('ends a file larger than the disk space limit as ResourceExhausted/disk (RLIMIT_FSIZE)', async () => {
    const r = await runTask(fixture('bigfile'), { policy: { resources: { diskSpace: '4MB', diskWriteBps: '100MB' } }, host });
    // The kernel took exactly the limit and refused the next byte: that is RLIMIT_FSIZE, not the watch.
    expect(r.stdout).toBe(`EFBIG after ${4 * MiB} bytes\n`);
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'disk', limit_value: 4 * MiB });
  });

  it('ends many small files that add up past the limit as ResourceExhausted/disk (the workspace filesystem is full)', async () => {
    const r = await runTask(fixture('manyfiles'), { policy: { resources: { diskSpace: '4MB', diskWriteBps: '100MB', wallTime: '60s' } }, host });
    expect(r.stdout).toBe(''); // the kernel refused the fifth file: /workspace is a 4 MB filesystem
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'disk', limit_value: 4 * MiB, message: expect.stringMatching(/reached in \/workspace/) });
    expect(r.usage.wall_ms).toBeLessThan(15_000);
  });

  it('honours cancellation', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    // Without cancellation only the 30 s wall limit would end it: well under that is the teeth, and
    // a loaded host's slow kill and reap still fits.
    const r = await runTask(fixture('spin'), { signal: ac.signal, policy: { resources: { wallTime: '30s' } }, host });
    expect(r.error?.kind).toBe('Cancelled');
    expect(r.usage.wall_ms).toBeLessThan(10_000);
  });
});

describe('the sandbox walls', () => {
  it('hides the host: no /etc/shadow, no host /root, read-only root, uid 1000 without capabilities', async () => {
    expectLockedDown(await runTask(fixture('probe'), { host }));
  });

  it('reports a write to a read-only path as FileSystemBlocked with the path', async () => {
    const r = await runTask(fixture('writeetc'), { host });
    expect(r.error?.kind).toBe('FileSystemBlocked');
    expect(r.violations).toContainEqual({ kind: 'filesystem', detail: expect.stringContaining('/etc/passwd'), source: 'task' });
  });

  it('blocks fetch() while the network is off, as NetworkBlocked', async () => {
    const r = await runTask(fixture('fetch'), { host });
    expect(r.error?.kind).toBe('NetworkBlocked');
    expect(r.violations[0]).toMatchObject({ kind: 'network' });
  });

  it('a reply past what a reply may hold is cut to fit: the verdict stays the task\'s own, never InvalidOutput', async () => {
    const inline = (body: string) => {
      const dir = mkdtempSync(join(tmpdir(), 'pawl-reply-'));
      writeFileSync(join(dir, 'main.js'), `async function main(input) { ${body} }`);
      return dir;
    };
    // A 70 KB message (the reply holds 64 KiB of one).
    const long = await runTask(inline('throw new Error("m".repeat(70000));'), { host });
    expect(long.error).toMatchObject({ kind: 'TaskError', message: expect.stringMatching(/^m+\.\.\. \(70000 characters\)$/) });
    expect(long.error!.message.length).toBeLessThanOrEqual(65536);
    // A blocked fetch of a 5000-character URL (a violation's detail holds 4096).
    const url = await runTask(inline('await fetch("http://example.com/" + "p".repeat(5000));'), { host });
    expect(url.error?.kind).toBe('NetworkBlocked');
    expect(url.violations[0]!.detail).toMatch(/\.\.\. \(\d+ characters\)$/);
    // 1001 blocked fetches caught, then success (a reply lists 1000 violations).
    const many = await runTask(inline('for (let i = 0; i < 1001; i++) { try { await fetch("http://example.com/" + i); } catch {} } return { done: true };'), { host, policy: { resources: { wallTime: '60s' } } });
    expect(many).toMatchObject({ status: 'succeeded', output: { done: true } });
    expect(many.violations).toHaveLength(1000);
    expect(many.violations.at(-1)).toEqual({ kind: 'network', detail: 'and 2 more violation(s) not listed', source: 'task' });
  }, 60_000);
});

describe('pawl exec runs any program the same way', () => {
  it('passes the exit status and output through, with binds brought in read-only', async () => {
    const r = await execProgram(['/bin/busybox', 'sh', '-c', 'echo hi; cat /data/x; echo bye > /data/y; exit 3'], {
      policy: { filesystem: { binds: [{ src: '/usr/bin/busybox', dst: '/bin/busybox' }, { src: dataDir(), dst: '/data' }] } },
      host,
    });
    expect(r.exit_code).toBe(3);
    expect(r.error?.kind).toBe('TaskError');
    expect(r.stdout).toContain('hi\nhello\n');
    expect(r.stderr).toMatch(/Read-only file system/);
  });

  it('stops a shell fork bomb as ResourceExhausted/pids', async () => {
    const r = await execProgram(['/bin/busybox', 'sh', '-c', 'b() { b | b & }; b; sleep 30'], {
      trustLevel: 'untrusted',
      policy: { filesystem: { binds: [{ src: '/usr/bin/busybox', dst: '/bin/busybox' }] }, resources: { wallTime: '20s' } },
      host,
    });
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'pids' });
  });
});

function dataDir(): string {
  const dir = '/var/lib/pawl/test-data';
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/x`, 'hello\n');
  return dir;
}
