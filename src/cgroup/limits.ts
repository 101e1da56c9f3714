// Policy -> the numbers the kernel enforces. Pure, so `pawl explain` and the drivers agree.
import type { ResourceLimits } from '../config/policy.js';
import { PawlError } from '../errors.js';
import type { CgroupLimits, IoLimit } from './types.js';

/** The CFS bandwidth controller rejects quotas under 1 ms (kernel/sched/core.c min_cfs_quota_period). */
const MIN_CPU_QUOTA_US = 1000;

export function cgroupLimits(resources: ResourceLimits, io: IoLimit | null): CgroupLimits {
  const cpuQuotaUs = Math.round((resources.cpuPercent / 100) * resources.cpuPeriodUs);
  if (cpuQuotaUs < MIN_CPU_QUOTA_US) {
    throw new PawlError(
      'InvalidPolicy',
      `cpuPercent ${resources.cpuPercent} of a ${resources.cpuPeriodUs} us period is a ${cpuQuotaUs} us quota; the kernel needs at least ${MIN_CPU_QUOTA_US} us (raise cpuPercent or cpuPeriodUs)`,
    );
  }
  return {
    memoryBytes: resources.memory,
    noSwap: true,
    cpuQuotaUs,
    cpuPeriodUs: resources.cpuPeriodUs,
    pidsMax: resources.processes * resources.threadsPerProcess,
    io,
  };
}
