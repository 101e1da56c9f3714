// The plan of one run: every artifact as a pure function of the policy and a few host facts.
// `pawl explain` prints exactly this; the sandbox executes exactly this.
import type { Policy } from '../config/policy.js';
import type { CgroupDriver, CgroupFileWrite, CgroupLimits, IoLimit } from '../cgroup/types.js';
import { cgroupLimits } from '../cgroup/limits.js';
import { bwrapBackend } from '../runtime/bwrap/argv.js';
import type { Launch, SandboxSpec } from '../runtime/types.js';
import { shimCommand, type Rlimits } from './shim.js';
import { rlimitsFor } from './rlimits.js';

export const HARNESS_COMMAND = ['/usr/bin/node', '/opt/pawl/harness.mjs'];

export interface PlanInput {
  policy: Policy;
  cgroupName: string;
  driver: CgroupDriver;
  /** Placement targets of the created group (explain passes the ones plan() implies). */
  procsFiles: string[];
  rootfs: string;
  workspace: string;
  command: string[];
  /** Whole-disk "MAJ:MIN" under the scratch dir, or null when there is none (tmpfs...). */
  ioDevice: string | null;
  hostId: number | null;
  seccompFd: number | null;
}

export interface RunPlan {
  limits: CgroupLimits;
  cgroupWrites: CgroupFileWrite[];
  rlimits: Rlimits;
  spec: SandboxSpec;
  runtime: Launch;
  /** What is actually spawned: the shim wrapping the runtime. */
  spawn: Launch;
}

export function planRun(i: PlanInput): RunPlan {
  const r = i.policy.resources;
  const io: IoLimit | null = i.ioDevice ? { device: i.ioDevice, readBps: r.diskReadBps, writeBps: r.diskWriteBps } : null;
  const limits = cgroupLimits(r, io);
  const rlimits = rlimitsFor(i.policy, limits.pidsMax);
  const spec: SandboxSpec = { policy: i.policy, rootfs: i.rootfs, workspace: i.workspace, command: i.command, seccompFd: i.seccompFd };
  const runtime = bwrapBackend.launch(spec);
  return {
    limits,
    cgroupWrites: i.driver.plan(i.cgroupName, limits),
    rlimits,
    spec,
    runtime,
    spawn: shimCommand(i.procsFiles, rlimits, i.hostId, runtime),
  };
}
