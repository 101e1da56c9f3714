// A run's plan for unit tests of the renderers: planRun itself, with stand-in host facts.
import type { CgroupVersion } from '../../src/cgroup/types.js';
import type { Policy } from '../../src/config/policy.js';
import { planRun, type SandboxPlan } from '../../src/plan/plan.js';
import type { OciSeccomp, SeccompPlan } from '../../src/seccomp/index.js';

export interface TestPlanOptions {
  rootfs?: string;
  workspace?: string;
  /** A program's argv (default: task mode, the harness). */
  command?: string[];
  ioDevices?: string[];
  cgroupVersion?: CgroupVersion;
  /** The degrade step's outcome (default: swap is limited). */
  swapLimit?: boolean;
  /** A stand-in filter (only where it goes matters here; the seccomp layer has its own tests). */
  seccomp?: OciSeccomp | null;
  egressSocket?: string | null;
  /** What the host's security modules apply (lsm/apply.ts lsmPlan). */
  lsm?: import('../../src/plan/plan.js').LsmFacts;
}

export function testPlan(policy: Policy, o: TestPlanOptions = {}): SandboxPlan {
  return planRun(
    policy,
    { cgroup: { version: o.cgroupVersion ?? 'v1', plan: () => [] }, ioDevices: o.ioDevices ?? [], swapLimit: o.swapLimit ?? true, seccomp: o.seccomp ? ({ oci: o.seccomp } as SeccompPlan) : null, ...(o.lsm ? { lsm: o.lsm } : {}) },
    { rootfs: o.rootfs ?? '/var/lib/pawl/rootfs/HASH', workspace: o.workspace ?? '/var/lib/pawl/runs/ID/workspace', egressSocket: o.egressSocket ?? null, cgroupName: 'run-ID' },
    o.command ? { mode: 'program', command: o.command } : { mode: 'task' },
  );
}
