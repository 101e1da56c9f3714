// The foundation's behaviours, on cgroup v2, through the library with real bubblewrap sandboxes:
// each limit ends the run with the right verdict and the usage comes from the v2 files.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PassThrough } from 'node:stream';
import {
  CGROUP_ROOT, MiB, NOTHING_LEFT, cgroupOf, ddRate, descendants, example, fixture, leftovers, pawl, requireV2, scratchFile, testHost, withBusybox,
} from './lib.mjs';

const host = testHost('sandbox');
const { runTask, execProgram, Sandbox, resolvePolicy } = pawl;
const DATA = '/var/lib/pawl/vm-data';

before(async () => {
  await requireV2();
});

after(async () => {
  assert.deepEqual(await leftovers(host), NOTHING_LEFT);
});

describe('cgroup v2: a task runs and reports', () => {
  it('runs the addition task on v2 and reports its peak memory', async (t) => {
    const r = await runTask(example('add'), { input: { num1: 2, num2: 40 }, host, policy: { resources: { cpuPercent: 100, wallTime: '60s' } } });
    t.diagnostic(`status ${r.status}, cgroup ${r.cgroup}, peak ${r.usage.peak_memory_bytes} B, cpu ${r.usage.cpu_ms} ms, wall ${r.usage.wall_ms} ms`);
    assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    assert.deepEqual(r.output, { sum: 42 });
    assert.equal(r.cgroup, 'v2');
    // memory.peak: node itself needs several MiB.
    assert.ok(r.usage.peak_memory_bytes > 4 * MiB, `peak ${r.usage.peak_memory_bytes}`);
    assert.ok(r.usage.cpu_ms > 0);
  });
});

describe('cgroup v2: limits end runs with the right verdict', () => {
  it('memory.max: a memory bomb under 64 MB is OOM-killed (memory.events oom_kill), peak near the limit', async (t) => {
    const r = await runTask(fixture('membomb'), { trustLevel: 'untrusted', host, policy: { resources: { cpuPercent: 100, wallTime: '60s' } } });
    t.diagnostic(`${r.error?.kind}/${r.error?.resource}: ${r.error?.message}; peak ${r.usage.peak_memory_bytes} B, wall ${r.usage.wall_ms} ms`);
    assert.equal(r.cgroup, 'v2');
    assert.equal(r.error?.kind, 'ResourceExhausted');
    assert.equal(r.error?.resource, 'memory');
    assert.equal(r.error?.limit_value, 64 * MiB);
    // "killed by the kernel OOM killer" is said only when memory.events counted an oom_kill.
    assert.match(r.error.message, /OOM killer/);
    assert.ok(r.usage.peak_memory_bytes > 56 * MiB, `peak ${r.usage.peak_memory_bytes}`);
    assert.ok(r.usage.peak_memory_bytes <= 64 * MiB, `peak ${r.usage.peak_memory_bytes}`);
    // The supervisor is fine and the next run works.
    const next = await runTask(fixture('noisy'), { input: { a: 1, b: 1 }, host, policy: { resources: { cpuPercent: 100 } } });
    assert.equal(next.output?.sum, 2);
  });

  it('memory.max applies from the program\'s first allocation (placement before exec)', async (t) => {
    // dd's very first act is to allocate a 96 MiB buffer and fill it from /dev/zero.
    const argv = ['/bin/busybox', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=96M', 'count=1'];
    const small = await execProgram(argv, { trustLevel: 'untrusted', host, policy: withBusybox({ resources: { cpuPercent: 100 } }) });
    t.diagnostic(`64 MB: ${small.error?.kind}/${small.error?.resource}, signal ${small.signal}, peak ${small.usage.peak_memory_bytes} B`);
    assert.equal(small.error?.kind, 'ResourceExhausted');
    assert.equal(small.error?.resource, 'memory');
    assert.match(small.error.message, /OOM killer/);
    assert.ok(small.usage.peak_memory_bytes <= 64 * MiB);
    const big = await execProgram(argv, { host, policy: withBusybox({ resources: { memory: '256MB', cpuPercent: 100 } }) });
    t.diagnostic(`256 MB: ${big.status}, peak ${big.usage.peak_memory_bytes} B`);
    assert.equal(big.status, 'succeeded', JSON.stringify(big.error));
    assert.ok(big.usage.peak_memory_bytes > 96 * MiB, `peak ${big.usage.peak_memory_bytes}`);
  });

  it('pids.max: a node fork bomb ends as ResourceExhausted/pids', async (t) => {
    const r = await runTask(fixture('forkbomb'), { trustLevel: 'untrusted', host, policy: { resources: { cpuPercent: 100, wallTime: '90s' } } });
    t.diagnostic(`${r.error?.kind}/${r.error?.resource}; peak pids ${r.usage.peak_pids}, wall ${r.usage.wall_ms} ms`);
    assert.equal(r.error?.kind, 'ResourceExhausted');
    assert.equal(r.error?.resource, 'pids');
    assert.ok(r.usage.peak_pids <= 5 * 12, `peak pids ${r.usage.peak_pids}`);
  });

  it('pids.max: a shell fork bomb ends as ResourceExhausted/pids', async (t) => {
    const r = await execProgram(['/bin/busybox', 'sh', '-c', 'b() { b | b & }; b; sleep 30'], {
      trustLevel: 'untrusted',
      host,
      policy: withBusybox({ resources: { cpuPercent: 100, wallTime: '60s' } }),
    });
    t.diagnostic(`${r.error?.kind}/${r.error?.resource}; peak pids ${r.usage.peak_pids}, wall ${r.usage.wall_ms} ms`);
    assert.equal(r.error?.kind, 'ResourceExhausted');
    assert.equal(r.error?.resource, 'pids');
    assert.ok(r.usage.peak_pids <= 60, `peak pids ${r.usage.peak_pids}`);
  });

  // The share over a steady window after start-up, measured by the spinner itself (fixture share).
  it('cpu.max: a spinner gets its share (25% of one core)', async (t) => {
    const r = await runTask(fixture('share'), { host, input: { windowMs: 2000 }, policy: { resources: { wallTime: '60s', cpuPercent: 25 } } });
    assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    const { share, cpuMs, wallMs } = r.output;
    t.diagnostic(`cpu ${cpuMs} ms over a ${wallMs} ms window: share ${share.toFixed(3)} (limit 0.25)`);
    assert.ok(share > 0.18 && share < 0.32, `share ${share}`);
  });

  it('cpu.max: the same spinner at 100% gets a whole core', async (t) => {
    const r = await runTask(fixture('share'), { host, input: { windowMs: 1000 }, policy: { resources: { wallTime: '60s', cpuPercent: 100 } } });
    assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    const { share, cpuMs, wallMs } = r.output;
    t.diagnostic(`cpu ${cpuMs} ms over a ${wallMs} ms window: share ${share.toFixed(3)} (limit 1.0)`);
    assert.ok(share > 0.5, `share ${share}`);
  });

  it('io.max: a direct-I/O read on the scratch disk is held to diskReadBps, and io.stat counts the bytes', async (t) => {
    const size = 20 * MiB;
    scratchFile(DATA, 'blob', size);
    const read = (rate) =>
      execProgram(['/bin/busybox', 'time', '-p', '/bin/busybox', 'dd', 'if=/data/blob', 'of=/dev/null', 'bs=1M', 'iflag=direct'], {
        host,
        policy: withBusybox({ resources: { cpuPercent: 100, diskReadBps: rate, wallTime: '60s' }, filesystem: { binds: [{ src: DATA, dst: '/data' }] } }),
      });
    const slow = await read('5MB');
    const fast = await read('20MB');
    for (const [rate, r] of [[5, slow], [20, fast]]) {
      assert.equal(r.status, 'succeeded', `${JSON.stringify(r.error)} ${r.stderr}`);
      const dd = ddRate(r.stderr);
      t.diagnostic(`diskReadBps ${rate} MiB/s: ${dd.bytes} B in ${dd.seconds} s = ${(dd.bps / MiB).toFixed(2)} MiB/s; io.stat rbytes ${r.usage.disk_read_bytes}`);
      assert.equal(dd.bytes, size);
      assert.ok(dd.bps > rate * MiB * 0.75 && dd.bps < rate * MiB * 1.2, `${rate} MiB/s limit, measured ${dd.bps / MiB} MiB/s`);
      assert.ok(r.usage.disk_read_bytes >= size, `io.stat rbytes ${r.usage.disk_read_bytes}`);
    }
    assert.ok(ddRate(slow.stderr).seconds > 3 * ddRate(fast.stderr).seconds);
  });
});

describe('cgroup v2: placement and kill', () => {
  it('the program starts inside its run\'s cgroup: its first read of /proc/self/cgroup is the namespace root, and every process of the run is in the group', async (t) => {
    const policy = resolvePolicy({ overrides: withBusybox({ resources: { cpuPercent: 100 } }) });
    const out = new PassThrough();
    let seen = '';
    out.on('data', (b) => (seen += b));
    const sb = await Sandbox.start({
      policy, host, mode: 'program', forwardStdout: out,
      // The program's first action, then a child that stays, so the outside view can be checked.
      command: ['/bin/busybox', 'sh', '-c', 'cat /proc/self/cgroup; /bin/busybox sleep 60 & echo started; wait'],
    });
    const deadline = Date.now() + 30_000;
    while (!seen.includes('started') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const group = `/${host.cgroupParent}/run-${sb.id}`;
    const procs = descendants(process.pid);
    const where = procs.map((pid) => [pid, cgroupOf(pid)]);
    t.diagnostic(`run group ${group}; the supervisor's descendants: ${where.map(([p, c]) => `${p}:${c}`).join(' ')}`);
    await sb.kill('cancelled');
    const r = await sb.result();
    assert.equal(r.stdout.split('\n')[0], '0::/', r.stdout);
    // Every process the supervisor started (shim -> bwrap -> program) is in the
    // run's group: none was ever outside it long enough to be seen there.
    assert.ok(procs.length >= 3, `descendants ${procs}`);
    for (const [pid, cg] of where) if (cg !== null) assert.equal(cg, group, `pid ${pid}`);
    assert.equal(r.error?.kind, 'Cancelled');
  });

  it('cancelling a run kills everything it started (cgroup.kill) and leaves nothing behind', async (t) => {
    const ac = new AbortController();
    const started = Date.now();
    // Cancelled once its 7 sleeps are up in the run's group (not after a fixed 3 s: under load,
    // start-up alone can take that); at the latest after 60 s.
    const parent = join(CGROUP_ROOT, host.cgroupParent);
    const SLEEP = ['/bin/busybox', 'sleep', '600', ''].join('\0');
    const sleeping = () => readdirSync(parent).filter((d) => d.startsWith('run-'))
      .flatMap((d) => readFileSync(join(parent, d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean))
      .filter((pid) => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === SLEEP; } catch { return false; } }).length;
    let ended = false;
    (async () => {
      while (!ended && Date.now() - started < 60_000) {
        try {
          if (sleeping() >= 7) break;
        } catch { /* the group is being made or removed */ }
        await new Promise((res) => setTimeout(res, 100));
      }
      ac.abort();
    })();
    const r = await execProgram(
      ['/bin/busybox', 'sh', '-c', 'for i in 1 2 3 4 5 6; do /bin/busybox sleep 600 & done; /bin/busybox setsid /bin/busybox sleep 600 & wait'],
      { host, signal: ac.signal, policy: withBusybox({ resources: { cpuPercent: 100 } }) },
    );
    ended = true;
    t.diagnostic(`${r.error?.kind} after ${Date.now() - started} ms; peak pids ${r.usage.peak_pids}`);
    assert.equal(r.error?.kind, 'Cancelled');
    assert.ok(r.usage.peak_pids >= 8, `peak pids ${r.usage.peak_pids}`);
    assert.deepEqual(await leftovers(host), NOTHING_LEFT);
  });
});
