// Policy -> the numbers the kernel enforces. Pure, so `pawl explain` and the drivers agree.
// The policy schema refused every input the kernel would (the CPU quota's minimum among them), so
// nothing here can fail for a policy reason.
import { cpuQuotaUs, type ResourceLimits } from '../config/policy.js';
import type { CgroupLimits, IoLimit } from './types.js';

/**
 * `swapLimit` false: the degrade step let the run go without a swap limit (hostfacts/degrade.ts).
 * `cpuAtDispatch`: a task run, whose CPU quota waits for the hand-over (CgroupLimits).
 */
export function cgroupLimits(resources: ResourceLimits, io: IoLimit | null, swapLimit = true, cpuAtDispatch = false): CgroupLimits {
  return {
    memoryBytes: resources.memory,
    noSwap: swapLimit,
    cpuQuotaUs: cpuQuotaUs(resources),
    cpuPeriodUs: resources.cpuPeriodUs,
    pidsMax: resources.processes * resources.threadsPerProcess,
    io,
    cpuAtDispatch,
  };
}
