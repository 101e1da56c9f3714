import type { Policy } from '../config/policy.js';

export interface Rlimits {
  nofile: number;
  nproc: number;
  fsize: number;
  core: number;
  /** Seconds: a backstop under the supervisor's own CPU-time watch. */
  cpu: number;
}

/** Pure: the rlimits a run gets. nproc counts threads like pids.max, so both use the same figure. */
export function rlimitsFor(policy: Policy, pidsMax: number): Rlimits {
  const r = policy.resources;
  return {
    nofile: r.fileDescriptors,
    nproc: pidsMax + 1,
    fsize: r.diskSpace,
    core: 0,
    cpu: Math.ceil(r.cpuTime / 1000) + 1,
  };
}
