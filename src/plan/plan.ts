// The plan of one run: everything the sandbox will be, as a pure function of the policy, a few
// host facts and the run's paths. Every backend renders this one object (runtime/*/), and
// `pawl explain` prints it; nothing a backend does may come from anywhere else.
import type { Policy } from '../config/policy.js';
import { cgroupLimits } from '../cgroup/limits.js';
import type { CgroupFileWrite, CgroupLimits, CgroupVersion, IoLimit } from '../cgroup/types.js';
import type { SeccompPlan } from '../seccomp/index.js';
import { sandboxLayout, type Layout, type Mount, type RunPaths } from './layout.js';
import { rlimitsFor, type Rlimits } from './rlimits.js';
import { landlockCommand } from '../lsm/landlock/rules.js';
import { programCommand } from '../network/forwarder-command.js';

export const HARNESS_COMMAND = ['/usr/bin/node', '/opt/pawl/harness.cjs'];

/** The namespaces the sandbox gets (user, pid, ipc, uts, mount and cgroup always: new). */
export interface Namespaces {
  /** false: the host's network namespace is shared (policy network mode full). */
  network: boolean;
}

/** The fds 3.. the program inside sees, beyond stdin/stdout/stderr. */
export interface ProgramFds {
  /** task mode: the harness reads its request on fd 3 and replies on fd 4 (task/protocol.ts). */
  task: boolean;
}

/** Fields of the sandbox's process beyond the layout (applied by the backends that can). */
export interface ProcessSecurity {
  /** An AppArmor profile the program runs under (runc/crun: process.apparmorProfile; bwrap: via apparmorSetup). */
  apparmorProfile?: string;
  /** bwrap: the set-up profile bwrap is started under (aa-exec), whose exec of the program enters apparmorProfile. */
  apparmorSetup?: string;
  /** An SELinux process label (runc/crun: process.selinuxLabel; bwrap: --exec-label). */
  selinuxLabel?: string;
  /** An SELinux label for the sandbox's mounts (runc/crun: linux.mountLabel; bwrap: --file-label). */
  mountLabel?: string;
}

/** What the host's security modules apply to this run (lsm/apply.ts lsmPlan): the degrade step's outcome. */
export interface LsmFacts {
  apparmor: { profile: string; setup: string } | null;
  selinux: { processLabel?: string; mountLabel?: string } | null;
}

/** Facts of the host (and of this run's placement) the plan depends on. */
export interface HostFacts {
  /** The cgroup driver's pure planner (cgroup/<version>/). */
  cgroup: { version: CgroupVersion; plan(name: string, limits: CgroupLimits): CgroupFileWrite[] };
  /** Whole-disk "MAJ:MIN"s behind the rootfs, /workspace and binds (none: nothing to throttle). */
  ioDevices: string[];
  /**
   * The degrade step's word on swap (supervisor/host.ts storagePlan): false only where this host
   * cannot hold swap in the memory limit and the policy allows going without (then `degraded`
   * says so). It lands in limits.noSwap, which both cgroup drivers and the OCI config read.
   */
  swapLimit: boolean;
  /** The run's compiled seccomp filter (seccomp/), or null for profile "none". */
  seccomp: SeccompPlan | null;
  /** The AppArmor profile and SELinux labels this host applies (none: nothing beyond the policy's own profile name). */
  lsm?: LsmFacts;
}

export interface PlanPaths extends RunPaths {
  /** The run's cgroup name (run-<id>). */
  cgroupName: string;
}

export interface SandboxPlan {
  /** limits.noSwap: memory+swap is held to the memory limit (facts.swapLimit, the degrade step's outcome). */
  limits: CgroupLimits;
  cgroupVersion: CgroupVersion;
  cgroupWrites: CgroupFileWrite[];
  rlimits: Rlimits;
  layout: Layout;
  namespaces: Namespaces;
  seccomp: SeccompPlan | null;
  fds: ProgramFds;
  process: ProcessSecurity;
}

export interface PlanOptions {
  mode: 'task' | 'program';
  /** program mode: the argv to run (task mode runs the harness). */
  command?: string[];
  /** An argv the sandbox runs first, which then execs the program (a confinement helper). */
  wrapper?: string[];
  /** Mounts beyond pawl's own, after them (from the policy's filesystem section). */
  extraMounts?: Mount[];
}

/** Pure: what the run's cgroup enforces. `swapLimit`: the degrade step's outcome (HostFacts.swapLimit). */
export function limitsFor(policy: Policy, ioDevices: string[], swapLimit: boolean, mode: 'task' | 'program'): CgroupLimits {
  const r = policy.resources;
  const io: IoLimit | null = ioDevices.length ? { devices: ioDevices, readBps: r.diskReadBps, writeBps: r.diskWriteBps } : null;
  return cgroupLimits(r, io, swapLimit, mode === 'task');
}

export function planRun(policy: Policy, facts: HostFacts, paths: PlanPaths, opts: PlanOptions): SandboxPlan {
  const limits = limitsFor(policy, facts.ioDevices, facts.swapLimit, opts.mode);
  // Program mode with a restricted network: a loopback HTTP proxy relays to the egress socket first.
  const command = opts.mode === 'task' ? HARNESS_COMMAND : programCommand(opts.command ?? [], policy);
  // Landlock's launcher (filesystem.landlock): applies the rules after the runtime's mounts, then execs.
  const landlock = landlockCommand(policy, []);
  const wrapper = [...landlock, ...(opts.wrapper ?? [])];
  const lsm = facts.lsm ?? { apparmor: null, selinux: null };
  const apparmorProfile = policy.security.apparmorProfile ?? lsm.apparmor?.profile;
  return {
    limits,
    cgroupVersion: facts.cgroup.version,
    cgroupWrites: facts.cgroup.plan(paths.cgroupName, limits),
    rlimits: rlimitsFor(policy, limits.pidsMax),
    layout: sandboxLayout(policy, paths, command, { wrapper, extraMounts: opts.extraMounts }),
    namespaces: { network: policy.network.mode !== 'full' },
    seccomp: facts.seccomp,
    fds: { task: opts.mode === 'task' },
    process: {
      ...(apparmorProfile ? { apparmorProfile } : {}),
      ...(lsm.apparmor && policy.runtime === 'bwrap' ? { apparmorSetup: lsm.apparmor.setup } : {}),
      ...(lsm.selinux?.processLabel ? { selinuxLabel: lsm.selinux.processLabel } : {}),
      ...(lsm.selinux?.mountLabel ? { mountLabel: lsm.selinux.mountLabel } : {}),
    },
  };
}
