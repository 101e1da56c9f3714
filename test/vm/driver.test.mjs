// The cgroup v2 driver (dist/cgroup) against the real kernel: the files it writes, and what the
// kernel's own accounting files say when processes (no sandbox here) run inside its groups.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BUSYBOX, CGROUP_ROOT, MiB, cgroups, dead, ddRate, keyed, readCg, requireV2, runInGroup, scratchFile, startInGroup,
} from './lib.mjs';

const PARENT = 'pawl-vm-driver';
const DATA = '/var/lib/pawl/vm-data';
let driver;
let device;

const limits = (over = {}) => ({ memoryBytes: 256 * MiB, noSwap: true, cpuQuotaUs: 100_000, cpuPeriodUs: 100_000, pidsMax: 100, io: null, ...over });
let seq = 0;
const name = () => `run-vm-${process.pid}-${++seq}`;

before(async () => {
  await requireV2();
  driver = await cgroups.cgroupDriver({ parent: PARENT });
  mkdirSync(DATA, { recursive: true });
  [device] = (await cgroups.ioDevicesFor(DATA)).devices;
});

after(async () => {
  assert.deepEqual(await driver.list(), []);
});

describe('cgroup v2 driver: the files it writes', () => {
  it('writes every limit and the kernel reads them back', async (t) => {
    assert.equal(driver.version, 'v2');
    assert.ok(device, 'the VM disk /dev/vda backs /var/lib/pawl');
    const run = await driver.create(name(), limits({ memoryBytes: 64 * MiB, cpuQuotaUs: 25_000, pidsMax: 20, io: { devices: [device], readBps: 5 * MiB, writeBps: 2 * MiB } }));
    try {
      const dir = run.dirs[0];
      assert.equal(dir, join(CGROUP_ROOT, PARENT, run.name));
      assert.deepEqual(run.procsFiles, [join(dir, 'cgroup.procs')]);
      const files = Object.fromEntries(['memory.max', 'memory.swap.max', 'memory.oom.group', 'cpu.max', 'pids.max', 'io.max'].map((f) => [f, readCg(dir, f).trim()]));
      t.diagnostic(JSON.stringify(files));
      assert.deepEqual(files, {
        'memory.max': String(64 * MiB),
        'memory.swap.max': '0',
        'memory.oom.group': '1',
        'cpu.max': '25000 100000',
        'pids.max': '20',
        'io.max': `${device} rbps=${5 * MiB} wbps=${2 * MiB} riops=max wiops=max`,
      });
      // The parent hands the controllers down.
      const sub = readCg(join(CGROUP_ROOT, PARENT), 'cgroup.subtree_control').trim().split(' ');
      for (const c of ['memory', 'cpu', 'pids', 'io']) assert.ok(sub.includes(c), `${c} in ${sub}`);
    } finally {
      await run.remove();
    }
  });
});

describe('cgroup v2 driver: the kernel enforces and accounts', () => {
  it('memory.max OOM-kills a 96 MiB allocation in a 64 MiB group: memory.events oom_kill, memory.peak at the limit', async (t) => {
    const run = await driver.create(name(), limits({ memoryBytes: 64 * MiB }));
    try {
      const r = await runInGroup(run.procsFiles[0], [BUSYBOX, 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=96M', 'count=1']);
      const dir = run.dirs[0];
      const events = keyed(readCg(dir, 'memory.events'));
      const peak = Number(readCg(dir, 'memory.peak'));
      const stats = await run.readStats();
      t.diagnostic(`signal ${r.signal}; memory.events ${JSON.stringify(events)}; memory.peak ${peak}`);
      assert.equal(r.signal, 'SIGKILL');
      assert.ok(events.oom_kill >= 1, 'oom_kill');
      assert.ok(peak > 56 * MiB && peak <= 64 * MiB, `memory.peak ${peak}`);
      assert.equal(stats.oomKills, events.oom_kill);
      assert.equal(stats.memoryPeakBytes, peak);
    } finally {
      await run.remove();
    }
  });

  it('pids.max refuses forks past the limit: pids.events max, pids.peak at the limit', async (t) => {
    const run = await driver.create(name(), limits({ pidsMax: 20 }));
    try {
      const r = await runInGroup(run.procsFiles[0], [BUSYBOX, 'sh', '-c', `for i in $(${BUSYBOX} seq 40); do ${BUSYBOX} sleep 3 & done; wait`]);
      const dir = run.dirs[0];
      const events = keyed(readCg(dir, 'pids.events'));
      const stats = await run.readStats();
      t.diagnostic(`exit ${r.code}; pids.events ${JSON.stringify(events)}; pids.peak ${stats.pidsPeak}; stderr: ${r.stderr.split('\n')[0]}`);
      assert.ok(events.max > 0, 'pids.events max');
      assert.equal(stats.pidsPeak, 20);
      assert.equal(stats.pidsLimitHits, events.max);
      assert.match(r.stderr, /can't fork|Resource temporarily unavailable/);
    } finally {
      await run.remove();
    }
  });

  it('cpu.max holds a spinner to 25% of a core (cpu.stat usage and nr_throttled)', async (t) => {
    const run = await driver.create(name(), limits({ cpuQuotaUs: 25_000 }));
    const child = startInGroup(run.procsFiles[0], [BUSYBOX, 'sh', '-c', 'while :; do :; done']);
    try {
      await new Promise((r) => setTimeout(r, 500));
      const u0 = keyed(readCg(run.dirs[0], 'cpu.stat')).usage_usec;
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 3000));
      const stat = keyed(readCg(run.dirs[0], 'cpu.stat'));
      const share = (stat.usage_usec - u0) / 1000 / (performance.now() - t0);
      t.diagnostic(`share ${share.toFixed(3)} of a core (cpu.max 25000 100000); nr_throttled ${stat.nr_throttled} of ${stat.nr_periods} periods`);
      assert.ok(share > 0.2 && share < 0.3, `share ${share}`);
      assert.ok(stat.nr_throttled > 10);
    } finally {
      await run.kill();
      await new Promise((r) => child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r));
      await run.remove();
    }
  });

  it('io.max holds a direct-I/O read on /dev/vda to rbps and io.stat counts its bytes', async (t) => {
    const file = scratchFile(DATA, 'driver-blob', 16 * MiB);
    const run = await driver.create(name(), limits({ io: { devices: [device], readBps: 4 * MiB, writeBps: 4 * MiB } }));
    try {
      const r = await runInGroup(run.procsFiles[0], [BUSYBOX, 'time', '-p', BUSYBOX, 'dd', `if=${file}`, 'of=/dev/null', 'bs=1M', 'iflag=direct']);
      const dd = ddRate(r.stderr);
      const line = readCg(run.dirs[0], 'io.stat').split('\n').find((l) => l.startsWith(`${device} `)) ?? '';
      const rbytes = Number(/rbytes=(\d+)/.exec(line)?.[1] ?? 0);
      t.diagnostic(`${(dd.bps / MiB).toFixed(2)} MiB/s under rbps=4 MiB/s (${dd.seconds} s); io.stat: ${line}`);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(dd.bps > 3 * MiB && dd.bps < 4.8 * MiB, `${dd.bps / MiB} MiB/s`);
      assert.ok(rbytes >= 16 * MiB, `rbytes ${rbytes}`);
      assert.equal((await run.readStats()).ioReadBytes, rbytes);
    } finally {
      await run.remove();
    }
  });

  it('kill() empties the group through cgroup.kill: orphans, double-forked daemons and a fork loop all die', async (t) => {
    const run = await driver.create(name(), limits({ pidsMax: 50 }));
    const dir = run.dirs[0];
    assert.ok(existsSync(join(dir, 'cgroup.kill')), 'this kernel has cgroup.kill (Linux 5.14+)');
    const child = startInGroup(run.procsFiles[0], [
      BUSYBOX, 'sh', '-c',
      `(${BUSYBOX} setsid ${BUSYBOX} sleep 600 &); (${BUSYBOX} sleep 600 &); while :; do ${BUSYBOX} sleep 600 & ${BUSYBOX} sleep 0.05; done`,
    ]);
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const before = await run.pids();
      t.diagnostic(`${before.length} processes in the group before kill(); cgroup.events: ${readCg(dir, 'cgroup.events').replace(/\n/g, ' ')}`);
      assert.ok(before.length >= 5, `${before}`);
      const t0 = performance.now();
      await run.kill();
      t.diagnostic(`kill() took ${(performance.now() - t0).toFixed(1)} ms`);
      assert.deepEqual(await run.pids(), []);
      assert.equal(keyed(readCg(dir, 'cgroup.events')).populated, 0);
      for (const pid of before) assert.ok(dead(pid), `pid ${pid} survived`);
    } finally {
      await run.kill();
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
      await run.remove();
    }
    assert.deepEqual(await driver.list(), []);
  });
});

describe('cgroup v2 driver: fails closed', () => {
  it('refuses a parent that holds processes ("no internal processes"), naming the cgroup', async () => {
    const busy = join(CGROUP_ROOT, 'pawl-vm-busy');
    mkdirSync(busy, { recursive: true });
    const sleeper = startInGroup(join(busy, 'cgroup.procs'), [BUSYBOX, 'sleep', '600']);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const d = await cgroups.cgroupDriver({ parent: 'pawl-vm-busy/pawl' });
      await assert.rejects(d.create('run-x', limits()), (e) => {
        assert.equal(e.kind, 'HostUnsupported');
        assert.match(e.message, /pawl-vm-busy holds processes .*no internal processes/);
        return true;
      });
    } finally {
      sleeper.kill('SIGKILL');
      await new Promise((r) => sleeper.once('exit', r));
      await new Promise((r) => setTimeout(r, 100));
      for (const d of [join(busy, 'pawl'), busy]) {
        try {
          rmdirSync(d);
        } catch (e) {
          if (e.code !== 'ENOENT') throw e;
        }
      }
    }
  });

  it('refuses a run name that already exists rather than sharing a group', async () => {
    const n = name();
    const run = await driver.create(n, limits());
    try {
      await assert.rejects(driver.create(n, limits()), /already exists/);
    } finally {
      await run.remove();
    }
  });
});
