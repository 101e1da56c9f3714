// The plan of one run: every artifact as a pure function of the policy and a few host facts.
// `pawl explain` prints exactly this; the sandbox executes exactly this.
import type { Policy } from '../config/policy.js';
import type { CgroupDriver, CgroupFileWrite, CgroupLimits, IoLimit } from '../cgroup/types.js';
import { cgroupLimits } from '../cgroup/limits.js';
import { runtimeFor, type OciRunFacts, type OciSpec } from '../runtime/index.js';
import type { Launch, SandboxSpec } from '../runtime/types.js';
import type { Rlimits } from './shim.js';
import { rlimitsFor } from './rlimits.js';
import { landlockCommand } from '../lsm/landlock/rules.js';

export const HARNESS_COMMAND = ['/usr/bin/node', '/opt/pawl/harness.mjs'];
/** The fd the spawned process holds the compiled seccomp filter on (bwrap --seccomp). */
export const SECCOMP_FD = 5;
/** The fd of bwrap's set-up record (--block-fd; runtime/types.ts SandboxSpec.readyFd). */
export const READY_FD = 6;
/** The fd bwrap reports its init's host pid on (--info-fd), so that init is reaped (runtime/index.ts). */
export const INFO_FD = 7;

export interface PlanInput {
  policy: Policy;
  cgroupName: string;
  driver: CgroupDriver;
  /** Placement targets of the created group (explain passes the ones plan() implies). */
  procsFiles: string[];
  rootfs: string;
  workspace: string;
  command: string[];
  /** Whole-disk "MAJ:MIN"s behind the rootfs, /workspace and binds (none: nothing to throttle). */
  ioDevices: string[];
  hostId: number | null;
  seccompFd: number | null;
  /** bwrap: the set-up record's fd (READY_FD), or null. */
  readyFd?: number | null;
  infoFd?: number | null;
  /** Restricted network: host path of the run's egress proxy socket. */
  egressSocket?: string | null;
  /** runc/crun: the paths of the run's opened mount sources (fs/mounts.ts). */
  mountSources?: string[] | null;
  /** The shim's per-run name in its error messages. */
  shimTag?: string;
  /** runc/crun: the run's OCI facts (runtime/index.ts ociRunFacts); null or absent for bwrap. */
  oci?: OciRunFacts | null;
}

export interface RunPlan {
  limits: CgroupLimits;
  cgroupWrites: CgroupFileWrite[];
  rlimits: Rlimits;
  spec: SandboxSpec;
  runtime: Launch;
  /** What is actually spawned: the shim wrapping bwrap; runc/crun create. */
  spawn: Launch;
  /** runc/crun: the bundle's config.json (null for bwrap). */
  config: OciSpec | null;
  oci: OciRunFacts | null;
}

/** Pure: what the run's cgroup enforces. */
export function limitsFor(policy: Policy, ioDevices: string[]): CgroupLimits {
  const r = policy.resources;
  const io: IoLimit | null = ioDevices.length ? { devices: ioDevices, readBps: r.diskReadBps, writeBps: r.diskWriteBps } : null;
  return cgroupLimits(r, io);
}

export function planRun(i: PlanInput): RunPlan {
  const limits = limitsFor(i.policy, i.ioDevices);
  const rlimits = rlimitsFor(i.policy, limits.pidsMax);
  const spec: SandboxSpec = { policy: i.policy, rootfs: i.rootfs, workspace: i.workspace, command: landlockCommand(i.policy, i.command), seccompFd: i.seccompFd, readyFd: i.readyFd ?? null, infoFd: i.infoFd ?? null, ...(i.egressSocket ? { egressSocket: i.egressSocket } : {}), ...(i.mountSources ? { mountSources: i.mountSources } : {}) };
  const backend = runtimeFor(i.policy.runtime).plan({ spec, limits, rlimits, procsFiles: i.procsFiles, hostId: i.hostId, shimTag: i.shimTag, oci: i.oci ?? null });
  return {
    limits,
    cgroupWrites: i.driver.plan(i.cgroupName, limits),
    rlimits,
    spec,
    ...backend,
  };
}
