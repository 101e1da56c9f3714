// The warm pool on real sandboxes: single use, idle deaths replaced, the global cap under a
// queue, and nothing left once a supervisor holding a pool is killed.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from '../../src/pool/index.js';
import { resolvePolicy } from '../../src/config/resolve.js';
import { probeCgroups } from '../../src/cgroup/probe.js';
import { collectGarbage } from '../../src/supervisor/gc.js';
import { fixture, leftovers, testHost } from '../helpers/host.js';
import { loadTask } from '../../src/task/load.js';
import { listLeftovers } from '../../src/supervisor/leftovers.js';
import { pollUntil } from '../../src/util/wait.js';
import { runTask } from '../../src/supervisor/run.js';
import { schemaThread } from '../../src/task/schema-thread.js';

const host = testHost('pool');

function task(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pawl-pool-task-'));
  writeFileSync(join(dir, 'main.js'), `function(input) { ${body} }`);
  writeFileSync(join(dir, 'metadata.json'), JSON.stringify({ name: 'pool-probe' }));
  return dir;
}

// Reports what an earlier task in the same sandbox would have left: files in /tmp, a global.
const MARKER = task(`
  const fs = require('fs');
  const seen = fs.readdirSync('/tmp');
  fs.writeFileSync('/tmp/mark-' + input.i, 'x');
  const before = globalThis.__pawlRuns ?? 0;
  globalThis.__pawlRuns = before + 1;
  return { i: input.i, seen, before };
`);
const TRIVIAL = task('return { n: input.n * 2 };');

/** run-* groups under this test's cgroup parent, read from the kernel's own tree (memory hierarchy). */
async function runGroups(): Promise<number> {
  const { mounts } = await probeCgroups();
  try {
    return readdirSync(join(mounts.memory!, host.cgroupParent)).filter((n) => n.startsWith('run-')).length;
  } catch {
    return 0;
  }
}

afterAll(async () => {
  await collectGarbage(host);
  const left = await leftovers(host);
  expect(left.cgroups).toEqual([]);
  expect(left.scratch).toEqual([]);
}, 60_000);

describe('warm pool', () => {
  it('gives each sandbox exactly one task: no file, global or id survives into the next', async () => {
    const pool = new Pool({ size: 2, maxConcurrent: 4 }, host);
    pool.warm(resolvePolicy({ trustLevel: 'limited' }));
    try {
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await pool.run(MARKER, { input: { i } }));
      results.push(...(await Promise.all([4, 5, 6, 7].map((i) => pool.run(MARKER, { input: { i } })))));
      for (const r of results) {
        expect(r.status, JSON.stringify(r.error)).toBe('succeeded');
        expect(r.output).toMatchObject({ seen: [], before: 0 });
      }
      expect(new Set(results.map((r) => r.id)).size).toBe(results.length);
      expect(pool.stats().warmHits).toBeGreaterThan(0); // the pool was really used
    } finally {
      await pool.close();
    }
  }, 120_000);

  // Many small writes are read in batches (a flood costs the supervisor little): a pooled run,
  // which ends at its reply, still has every line the task printed before it.
  it('a task that prints many short lines then returns: every line is in its result', async () => {
    const pool = new Pool({ size: 1, maxConcurrent: 2 }, host);
    try {
      const r = await pool.run(task('for (let i = 0; i < 3000; i++) console.log("line " + i); return { done: true };'), {});
      expect(r.status, JSON.stringify(r.error)).toBe('succeeded');
      const lines = r.stdout.trim().split('\n');
      expect(lines.length).toBe(3000);
      expect(lines.at(-1)).toBe('line 2999');
      expect(r.stdout_dropped_bytes ?? 0).toBe(0);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('replaces a sandbox killed while idle and never hands it a task', async () => {
    const pool = new Pool({ size: 1, maxConcurrent: 2 }, host);
    const policy = resolvePolicy({ trustLevel: 'limited' });
    try {
      pool.warm(policy);
      const idle = await waitFor(() => idleSandboxes(pool)[0]);
      process.kill(idle.pid!, 'SIGKILL');
      await waitFor(() => pool.stats().diedIdle === 1 || undefined);
      const replacement = await waitFor(() => idleSandboxes(pool).find((s) => s.id !== idle.id));
      const r = await pool.run(MARKER, { input: { i: 1 } });
      expect(r.status).toBe('succeeded');
      expect(r.id).not.toBe(idle.id);
      expect(r.id).toBe(replacement.id);
      expect(pool.stats().diedIdle).toBe(1);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('a warm sandbox boots without its CPU quota, which is written at dispatch: its task is held to it', async () => {
    const pool = new Pool({ size: 1, maxConcurrent: 2 }, host);
    const limits = { policy: { resources: { wallTime: '60s', cpuPercent: 25 } } };
    try {
      await pool.warmTask(fixture('share'), limits);
      const idle = await waitFor(() => idleSandboxes(pool)[0]);
      // The kernel's own file for the idle sandbox's group: node booted and waits without a quota.
      const cg = await probeCgroups();
      const quota = () => (cg.version === 'v1'
        ? readFileSync(join(cg.mounts.cpu!, host.cgroupParent, `run-${idle.id}`, 'cpu.cfs_quota_us'), 'utf8')
        : readFileSync(join(cg.mounts.memory!, host.cgroupParent, `run-${idle.id}`, 'cpu.max'), 'utf8')).trim();
      expect(quota()).toMatch(cg.version === 'v1' ? /^-1$/ : /^max /);
      const running = pool.run(fixture('share'), limits);
      await waitFor(() => quota() !== (cg.version === 'v1' ? '-1' : 'max 100000') || undefined, 5000);
      expect(quota()).toBe(cg.version === 'v1' ? '25000' : '25000 100000');
      const r = await running;
      expect(r.id).toBe(idle.id);
      expect(r.status).toBe('succeeded');
      // Without the quota the spinner gets a whole core (or half of one on a busy 2-core host). A
      // quota is a ceiling: on a host as loaded as CI's (host tests beside the VM on 2 cores) the
      // spinner got 0.168 of its 0.25, so only the ceiling is held here; the kernel's own file
      // above shows the quota's value.
      const { share } = r.output as { share: number };
      expect(share).toBeGreaterThan(0.05);
      expect(share).toBeLessThan(0.32);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('a sandbox that dies the instant before dispatch is not used either', async () => {
    const pool = new Pool({ size: 1, maxConcurrent: 2 }, host);
    try {
      pool.warm(resolvePolicy({ trustLevel: 'limited' }));
      const idle = await waitFor(() => idleSandboxes(pool)[0]);
      const loaded = await loadTask(MARKER);
      process.kill(idle.pid!, 'SIGKILL');
      // Spin (never yielding to the event loop, so node has not seen the exit) until the kernel
      // shows it dead, then dispatch in the same tick: only the pool's own check can catch it.
      while (!/\) [ZX] /.test(readFileSync(`/proc/${idle.pid}/stat`, 'utf8')));
      const r = await pool.run(loaded, { input: { i: 2 } });
      expect(r.status).toBe('succeeded');
      expect(r.id).not.toBe(idle.id);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('holds the concurrency cap under 200 queued tasks, each of which gets exactly one result', async () => {
    const CAP = 3;
    const pool = new Pool({ size: 1, maxConcurrent: CAP }, host);
    let kernelPeak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        kernelPeak = Math.max(kernelPeak, await runGroups());
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      // Two keys, so the cap also holds while idle sandboxes of one key make room for the other.
      const results = await Promise.all(Array.from({ length: 200 }, (_, n) =>
        pool.run(TRIVIAL, { input: { n }, trustLevel: n % 2 ? 'limited' : 'trusted' })));
      expect(results.map((r) => r.status)).toEqual(Array(200).fill('succeeded'));
      expect(results.map((r) => (r.output as { n: number }).n)).toEqual(Array.from({ length: 200 }, (_, n) => n * 2));
      expect(new Set(results.map((r) => r.id)).size).toBe(200);
      expect(pool.stats().peakLive).toBeLessThanOrEqual(CAP);
      expect(kernelPeak).toBeGreaterThan(0);
      expect(kernelPeak).toBeLessThanOrEqual(CAP);
    } finally {
      sampling = false;
      await sampler;
      await pool.close();
    }
  }, 600_000);

  it('hands the result back before the teardown, and close() waits for every teardown: nothing is left', async () => {
    // No idle sandboxes (size 0): close() has nothing to destroy, only the runs' teardowns to wait for.
    const pool = new Pool({ size: 0, maxConcurrent: 3 }, host);
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => pool.run(TRIVIAL, { input: { n }, trustLevel: 'limited' })));
    expect(results.map((r) => r.output)).toEqual([2, 4, 6, 8, 10, 12].map((n) => ({ n })));
    // No teardown may be cut short: the moment close() resolves, every run's group, mount and scratch dir is gone.
    await pool.close();
    expect(pool.stats()).toMatchObject({ live: 0, teardownFailures: 0 });
    const left = await leftovers(host);
    const ids = results.map((r) => r.id);
    expect({
      cgroups: left.cgroups.filter((g) => ids.some((id) => g.endsWith(`run-${id}`))),
      scratch: left.scratch.filter((d) => ids.some((id) => d.includes(id))),
      mounts: left.mounts.filter((m) => ids.some((id) => m.includes(id))),
    }).toEqual({ cgroups: [], scratch: [], mounts: [] });
  }, 120_000);

  it('close() tears down several warm sandboxes at once, each completely (none left to gc)', async () => {
    // Four idle sandboxes: their teardowns (each a /workspace syncfs and unmount) run at the same
    // moment, more than may flush at once: the rest wait their turn instead of giving up.
    const failures: unknown[] = [];
    const pool = new Pool({ size: 4, maxConcurrent: 4 }, host, { teardownFailed: (f) => failures.push(f) });
    const keyPolicy = await pool.warmTask(TRIVIAL);
    const end = Date.now() + 60_000;
    while (pool.idleFor(keyPolicy) < 4 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(pool.idleFor(keyPolicy)).toBe(4);
    await pool.close();
    expect(failures).toEqual([]);
    expect(pool.stats()).toMatchObject({ live: 0, teardownFailures: 0 });
    expect(await listLeftovers(host)).toEqual([]);
  });

  it('a teardown that fails after the result was handed back lands on the leftover list, is reported, and gc clears it', async () => {
    const failures: { id: string; error: string }[] = [];
    const pool = new Pool({ size: 1, maxConcurrent: 2 }, host, { teardownFailed: (f) => failures.push(f) });
    const policy = resolvePolicy({ trustLevel: 'limited' });
    pool.warm(policy);
    await pollUntil(() => pool.idleFor(policy) === 1, 30_000, 20);
    const [idle] = idleSandboxes(pool);
    // A child group inside the sandbox's group makes its rmdir fail (EBUSY) after a 1 s retry, as a
    // process asleep in uninterruptible I/O would: the teardown takes that long, and then fails.
    const { mounts } = await probeCgroups();
    const blocker = join(mounts.pids!, host.cgroupParent, `run-${idle!.id}`, 'blocker');
    mkdirSync(blocker);
    try {
      const r = await pool.run(TRIVIAL, { input: { n: 21 }, trustLevel: 'limited' });
      expect(r).toMatchObject({ id: idle!.id, status: 'succeeded', output: { n: 42 } });
      expect(r.cleanup_error).toBeUndefined();
      // The result came while the teardown still went on: its scratch dir is still there.
      expect(existsSync(join(host.runDir, idle!.id))).toBe(true);
      await pool.close();
      expect(failures).toEqual([{ id: idle!.id, error: expect.stringContaining('cannot remove cgroup') }]);
      expect(pool.stats().teardownFailures).toBe(1);
      expect((await listLeftovers(host)).map((l) => l.id)).toContain(idle!.id);
    } finally {
      rmdirSync(blocker);
    }
    const report = await collectGarbage(host);
    expect(report.cgroups).toContain(`run-${idle!.id}`);
    expect((await listLeftovers(host)).map((l) => l.id)).not.toContain(idle!.id);
  }, 120_000);

  it('ends a run at its reply: nothing the task started runs past it, and what it printed is kept', async () => {
    // The task keeps its process alive past its reply: the harness's exit is disabled and a timer
    // spins. Only the supervisor's kill at the reply ends it; without it the run would end at its
    // wall time, as a Timeout.
    const LINGER = task(`
      const proc = require('process');
      proc.exit = () => {};
      proc.stderr.write('to stderr\\n');
      console.log('printed before the reply');
      setInterval(() => { for (const end = Date.now() + 50; Date.now() < end;); }, 1);
      return { n: input.n };
    `);
    const pool = new Pool({ size: 1, maxConcurrent: 2 }, host);
    const opts = { trustLevel: 'limited' as const, policy: { resources: { wallTime: 8000 } } };
    try {
      const r = await pool.run(LINGER, { ...opts, input: { n: 7 } });
      expect(r, JSON.stringify(r.error)).toMatchObject({ status: 'succeeded', output: { n: 7 }, exit_code: 0, signal: null });
      expect(r.stdout).toContain('printed before the reply');
      expect(r.stderr).toContain('to stderr');
      // The moment the result is in, every process of the run left is being killed: it runs no
      // more code (the result does not wait for node's death, the teardown does).
      const { mounts } = await probeCgroups();
      const procsFile = join(mounts.pids!, host.cgroupParent, `run-${r.id}`, 'cgroup.procs');
      const procs = () => {
        try {
          return readFileSync(procsFile, 'utf8').split('\n').filter(Boolean).map(Number);
        } catch {
          return []; // already removed
        }
      };
      for (const pid of procs()) expect(beingKilled(pid), `process ${pid} of the run is not being killed`).toBe(true);
      expect(r.timings_ms.run).toBeLessThan(8000);
      // Its pipes ended because the run was killed at the reply, not at the reap's 2 s deadline.
      expect(r.timings_ms.cleanup).toBeLessThan(1500);
      await pool.close();
      expect(procs()).toEqual([]);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('a run ended at its reply keeps all it printed, past the pipes\' 64 KiB', async () => {
    // The harness lets go of stdout/stderr before it replies and the result does not wait for
    // node's exit: what was printed must still all be read, in order.
    const LOUD = task(`
      for (let i = 0; i < 3000; i++) console.log(String(i).padStart(6, '0') + ' ' + 'x'.repeat(93));
      process.stderr.write('e'.repeat(100000));
      return { done: true };
    `);
    const pool = new Pool({ size: 1, maxConcurrent: 2 }, host);
    try {
      const r = await pool.run(LOUD, { trustLevel: 'limited' });
      expect(r, JSON.stringify(r.error)).toMatchObject({ status: 'succeeded', output: { done: true } });
      const lines = r.stdout.split('\n').filter(Boolean);
      expect(lines).toHaveLength(3000);
      expect(lines.every((l, i) => l.startsWith(String(i).padStart(6, '0')))).toBe(true);
      expect(r.stderr).toBe('e'.repeat(100000));
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('a task that corks or rewires its stdout still gets its reply out, pooled and single use', async () => {
    // The harness flushes the streams before it replies: with the streams tampered with, that
    // flush never ends, and the reply must go anyway (else: a wall-time Timeout at 8 s).
    const TAMPER = task(`
      const proc = require('process');
      console.log('before');
      proc.stdout.cork();
      proc.stdout.write = () => true;
      proc.stderr._write = () => {};
      return { tampered: true };
    `);
    const opts = { trustLevel: 'limited' as const, policy: { resources: { wallTime: 8000 } } };
    const pool = new Pool({ size: 1, maxConcurrent: 2 }, host);
    try {
      for (const r of [await pool.run(TAMPER, opts), await runTask(TAMPER, { ...opts, host })]) {
        expect(r, JSON.stringify(r.error)).toMatchObject({ status: 'succeeded', output: { tampered: true } });
        expect(r.stdout).toContain('before');
        expect(r.timings_ms.run).toBeLessThan(4000);
      }
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('checks a pooled output against output.schema.json from the reply on: a mismatch is InvalidOutput, a match succeeds, a limit still wins', async () => {
    // The check starts at the reply, beside the reap; the verdict read after the kill decides
    // whether its answer counts.
    const spin = task(`
      const proc = require('process');
      while (proc.cpuUsage().user < 600_000);
      return { sum: 'spun' };
    `);
    writeFileSync(join(spin, 'output.schema.json'), JSON.stringify({ type: 'object', properties: { sum: { type: 'number' } }, required: ['sum'] }));
    const pool = new Pool({ size: 1, maxConcurrent: 2 }, { ...host, pollIntervalMs: 10_000 });
    try {
      const bad = await pool.run(fixture('badoutput'), {});
      expect(bad).toMatchObject({ status: 'failed', error: { kind: 'InvalidOutput', message: expect.stringMatching(/output.schema.json/) } });
      expect(bad.error?.details?.join('\n')).toMatch(/sum/);
      expect(bad.output).toBeUndefined();
      // Checked once, at the reply: the answer found there is the one used (no second check).
      const validate = vi.spyOn(schemaThread, 'run');
      const good = await pool.run(join(import.meta.dirname, '..', '..', 'examples', 'add'), { input: { num1: 2, num2: 3 } });
      expect(good).toMatchObject({ status: 'succeeded', output: { sum: 5 } });
      expect(validate.mock.calls.filter(([op, schema]) => op === 'validate' && schema.what === 'output')).toHaveLength(1);
      validate.mockRestore();
      const limited = await pool.run(spin, { trustLevel: 'limited', policy: { resources: { cpuTime: 200, wallTime: 20_000 } } });
      expect(limited.error).toMatchObject({ kind: 'Timeout', limit: 'cpu' });
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('a limit crossed before the reply still decides the verdict of a run ended at its reply', async () => {
    // Polls 10 s apart: only the final figures, read after the kill at the reply, can see the CPU
    // time the task used before it replied.
    const slow = { ...host, pollIntervalMs: 10_000 };
    const SPIN = task(`
      const proc = require('process');
      while (proc.cpuUsage().user < 600_000);
      return { spun: true };
    `);
    const pool = new Pool({ size: 1, maxConcurrent: 2 }, slow);
    try {
      const r = await pool.run(SPIN, { trustLevel: 'limited', policy: { resources: { cpuTime: 200, wallTime: 20_000 } } });
      expect(r.status).toBe('failed');
      expect(r.error).toMatchObject({ kind: 'Timeout', limit: 'cpu' });
      expect(r.output).toBeUndefined();
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('forgets a policy unused for idleMs once it holds no sandbox: many one-off policies do not pile up', async () => {
    const pool = new Pool({ size: 1, maxConcurrent: 4, idleMs: 300 }, host);
    try {
      for (let i = 0; i < 3; i++) {
        const r = await pool.run(TRIVIAL, { trustLevel: 'limited', policy: { env: { ONE_OFF: String(i) } }, input: { n: i } });
        expect(r.output).toEqual({ n: i * 2 });
      }
      // Their idle sandboxes expire, their keys with them (some may be gone already on a slow
      // host: 300 ms is short); a policy in use now stays.
      await pollUntil(() => pool.stats().live === 0, 10_000, 50);
      await pool.run(TRIVIAL, { trustLevel: 'limited', input: { n: 1 } });
      expect(pool.stats().keys).toBe(1);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('a killed supervisor leaves no pooled sandbox behind after gc', async () => {
    // A separate supervisor process (from dist/: run npm run build first) with three idle sandboxes.
    const script = `
      const { Pool } = await import(${JSON.stringify(join(import.meta.dirname, '..', '..', 'dist', 'pool', 'index.js'))});
      const { resolvePolicy } = await import(${JSON.stringify(join(import.meta.dirname, '..', '..', 'dist', 'config', 'resolve.js'))});
      const pool = new Pool({ size: 3, maxConcurrent: 3 }, ${JSON.stringify(host)});
      pool.warm(resolvePolicy({ trustLevel: 'limited' }));
      const t = setInterval(async () => {
        if (pool.stats().idle !== 3) return;
        clearInterval(t);
        const sbs = [...pool.keys.values()].flatMap((k) => k.idle.map((s) => s.sb));
        console.log('ready ' + JSON.stringify((await Promise.all(sbs.map((sb) => sb.pids()))).flat()));
      }, 20);
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pids = await new Promise<number[]>((resolve, reject) => {
      child.stdout!.on('data', (b: Buffer) => {
        const m = /ready (\[.*\])/.exec(b.toString());
        if (m) resolve(JSON.parse(m[1]!));
      });
      child.on('exit', (c) => reject(new Error(`supervisor exited ${c}`)));
    });
    expect(await runGroups()).toBe(3);
    expect(pids.length).toBeGreaterThanOrEqual(3);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    await collectGarbage(host);
    const left = await leftovers(host);
    // Every process of the three sandboxes is gone (other checkouts' sandboxes share the host-id
    // range on this machine, so leftovers().processes is not specific to this test).
    expect(pids.filter((pid) => { try { return !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; } })).toEqual([]);
    expect({ ...left, processes: [] }).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
  }, 120_000);
});

type Idle = { id: string; pid: number | undefined };
/**
 * The process is gone, or past its last instruction of user code: SIGKILL pending (ShdPnd/SigPnd
 * bit 9), or exiting (PF_EXITING in /proc/PID/stat's flags), or a zombie.
 */
function beingKilled(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const pending = [...status.matchAll(/^(?:ShdPnd|SigPnd):\s*([0-9a-f]+)$/gm)].some((m) => (BigInt(`0x${m[1]}`) & (1n << 8n)) !== 0n);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // from field 3 (state) on
    const PF_EXITING = 0x4;
    return pending || fields[0] === 'Z' || fields[0] === 'X' || (Number(fields[6]) & PF_EXITING) !== 0;
  } catch {
    return true; // reaped meanwhile
  }
}

/** The idle sandboxes, read through the pool's private key table (test only). */
function idleSandboxes(pool: Pool): Idle[] {
  const keys = (pool as unknown as { keys: Map<string, { idle: { sb: Idle }[] }> }).keys;
  return [...keys.values()].flatMap((k) => k.idle.map((s) => s.sb));
}

async function waitFor<T>(f: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
