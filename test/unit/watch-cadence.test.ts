// The supervisor's polls thin out as a run ages (supervisor/watch.ts), which is what keeps a long
// quiet run's monitoring cheap; they must never let the CPU-time limit slip, and a pooled
// sandbox's task must get the dense first polls however long the sandbox waited idle.
// (That the CPU-time limit still holds in a real sandbox: foundation.test.ts, late-spin.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CgroupStats, RunCgroup } from '../../src/cgroup/types.js';
import { resolvePolicy } from '../../src/config/resolve.js';
import { pollCadence, Watch } from '../../src/supervisor/watch.js';

describe('pollCadence', () => {
  it('polls every base interval in a run\'s first moments, then a quarter of its age apart, up to the most', () => {
    expect(pollCadence(0, 30_000, 100, 500)).toBe(100);
    expect(pollCadence(350, 30_000, 100, 500)).toBe(100);
    expect(pollCadence(1000, 30_000, 100, 500)).toBe(250);
    expect(pollCadence(1800, 30_000, 100, 500)).toBe(450);
    expect(pollCadence(60_000, 30_000, 100, 500)).toBe(500);
  });

  it('never waits longer than the host\'s CPUs take to use up the CPU time left', () => {
    const n = cpus().length;
    expect(pollCadence(60_000, 300 * n, 100, 500)).toBe(300);
    expect(pollCadence(60_000, 150 * n, 100, 500)).toBe(150);
    // Near or past the limit: the base interval, never less.
    expect(pollCadence(60_000, 10, 100, 500)).toBe(100);
    expect(pollCadence(60_000, -50, 100, 500)).toBe(100);
  });

  it('a most below the base is the base (a host that asked for sparse polls gets them from the start)', () => {
    expect(pollCadence(0, 30_000, 10_000, 500)).toBe(10_000);
    expect(pollCadence(60_000, 30_000, 10_000, 500)).toBe(10_000);
  });
});

describe('Watch', () => {
  const stats: CgroupStats = {
    memoryCurrentBytes: 0, memoryPeakBytes: 0, oomKills: 0, cpuUsageUs: 0, pidsCurrent: 1, pidsPeak: 1, pidsLimitHits: 0, ioReadBytes: 0, ioWriteBytes: 0,
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('polls densely again from a pooled task\'s hand-over, however long the sandbox waited idle', async () => {
    const times: number[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'pawl-watch-'));
    writeFileSync(join(dir, 'cgroup.procs'), '');
    const cgroup = { readStats: async () => (times.push(performance.now()), stats), procsFiles: [join(dir, 'cgroup.procs')] } as unknown as RunCgroup;
    const kills: string[] = [];
    const watch = new Watch(cgroup, resolvePolicy({ trustLevel: 'limited' }), dir, (r) => kills.push(r));
    watch.start(10, 300, { clock: false });
    try {
      await sleep(1600);
      // Idle for 1.6 s: the polls are a quarter of that apart by now.
      const idle = times.filter((t) => t > performance.now() - 600).length;
      expect(idle).toBeLessThanOrEqual(3);
      const handOver = performance.now();
      watch.startClock();
      await sleep(100);
      expect(times.filter((t) => t >= handOver).length).toBeGreaterThanOrEqual(4);
    } finally {
      watch.stop();
    }
    const n = times.length;
    await sleep(400);
    expect(times.length).toBe(n); // stopped: no poll after
    expect(kills).toEqual([]);
    rmSync(dir, { recursive: true });
  });
});
