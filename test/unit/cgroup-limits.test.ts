import { describe, expect, it } from 'vitest';
import { cgroupLimits } from '../../src/cgroup/limits.js';
import { releaseWrites } from '../../src/cgroup/files.js';
import { CgroupV1Driver } from '../../src/cgroup/v1/manager.js';
import { CgroupV2Driver } from '../../src/cgroup/v2/manager.js';
import { ResourceLimits } from '../../src/config/policy.js';
import { resolvePolicy } from '../../src/config/resolve.js';

const MiB = 1024 ** 2;

describe('cgroupLimits', () => {
  it('turns the default policy into kernel numbers', () => {
    expect(cgroupLimits(ResourceLimits.parse({}), null)).toEqual({
      memoryBytes: 128 * MiB,
      noSwap: true,
      cpuQuotaUs: 50_000,
      cpuPeriodUs: 100_000,
      pidsMax: 120,
      io: null,
      cpuAtDispatch: false,
    });
  });

  it('leaves a task run\'s CPU quota for the hand-over: the cpu write is marked, the others are not', () => {
    const task = new CgroupV1Driver({ root: '/cg' }).plan('run-ID', cgroupLimits(ResourceLimits.parse({}), null, true, true));
    expect(task.filter((w) => w.atDispatch).map((w) => `${w.path} = ${w.value}`)).toEqual(['/cg/cpu/pawl/run-ID/cpu.cfs_quota_us = 50000']);
    const v2 = new CgroupV2Driver({ root: '/cg2' }).plan('run-ID', cgroupLimits(ResourceLimits.parse({}), null, true, true));
    expect(v2.filter((w) => w.atDispatch).map((w) => `${w.path} = ${w.value}`)).toEqual(['/cg2/pawl/run-ID/cpu.max = 50000 100000']);
    const program = new CgroupV1Driver({ root: '/cg' }).plan('run-ID', cgroupLimits(ResourceLimits.parse({}), null, true, false));
    expect(program.some((w) => w.atDispatch)).toBe(false);
  });

  it('counts tasks as processes * threadsPerProcess', () => {
    expect(cgroupLimits(ResourceLimits.parse({ processes: 1, threadsPerProcess: 12 }), null).pidsMax).toBe(12);
    expect(cgroupLimits(ResourceLimits.parse({ processes: 20, threadsPerProcess: 1 }), null).pidsMax).toBe(20);
  });

  it('scales the quota to the period and rounds it to whole microseconds', () => {
    expect(cgroupLimits(ResourceLimits.parse({ cpuPercent: 250, cpuPeriodUs: 50_000 }), null)).toMatchObject({ cpuQuotaUs: 125_000, cpuPeriodUs: 50_000 });
    expect(cgroupLimits(ResourceLimits.parse({ cpuPercent: 33.3333 }), null).cpuQuotaUs).toBe(33_333);
  });

  it('passes the io limit through and takes memory from the policy', () => {
    const io = { devices: ['254:0'], readBps: 10 * MiB, writeBps: 5 * MiB };
    const limits = cgroupLimits(ResourceLimits.parse({ memory: '64MB' }), io);
    expect(limits.io).toEqual(io);
    expect(limits.memoryBytes).toBe(64 * MiB);
  });

  it('a quota below the kernel minimum of 1000 us is refused by the schema, never later', () => {
    const tiny = ResourceLimits.safeParse({ cpuPercent: 0.5 });
    expect(tiny.success).toBe(false);
    expect(tiny.error?.issues[0]).toMatchObject({ path: ['cpuPercent'], message: expect.stringMatching(/500 us quota.*at least 1000 us/) });
    expect(() => resolvePolicy({ overrides: { resources: { cpuPercent: 0.5 } } })).toThrow(/resources\.cpuPercent: .*500 us quota/);
  });
});

describe('the kill lifts what would keep a killed process alive', () => {
  // A killed process still runs its exit: throttled, it waited for the group's CPU debt or its
  // queued direct I/O (storage.test.ts shows the disk case on a real run).
  it('releases the CPU quota and every disk throttle, v1 and v2, and nothing else', () => {
    const limits = cgroupLimits(ResourceLimits.parse({}), { devices: ['8:0', '7:3'], readBps: 10 * 1024 * 1024, writeBps: 10 * 1024 * 1024 }, true, true);
    const v1 = releaseWrites(new CgroupV1Driver({ root: '/cg' }).plan('run-ID', limits)).map((w) => `${w.path.replace(/^\/cg\/\w+\/pawl\/run-ID\//, '')} ${w.value}`);
    expect(v1).toEqual([
      'cpu.cfs_quota_us -1',
      'blkio.throttle.read_bps_device 8:0 0', 'blkio.throttle.write_bps_device 8:0 0',
      'blkio.throttle.read_bps_device 7:3 0', 'blkio.throttle.write_bps_device 7:3 0',
    ]);
    const v2 = releaseWrites(new CgroupV2Driver({ root: '/cg2' }).plan('run-ID', limits)).map((w) => `${w.path.replace(/^\/cg2\/pawl\/run-ID\//, '')} ${w.value}`);
    expect(v2).toEqual(['cpu.max max 100000', 'io.max 8:0 rbps=max wbps=max riops=max wiops=max', 'io.max 7:3 rbps=max wbps=max riops=max wiops=max']);
  });
});
