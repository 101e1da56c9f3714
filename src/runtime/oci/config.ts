// The OCI runtime spec's config.json as a pure function of the policy and a few run facts, for
// runc and crun alike (snapshot-tested, printed by `pawl explain --runtime runc`): a rendering of
// the run's plan (plan/), the same one bwrap's argv renders.
import type { IoLimit } from '../../cgroup/types.js';
import type { OciSeccomp } from '../../seccomp/index.js';
import type { Mount } from '../../plan/layout.js';
import type { SandboxPlan } from '../../plan/plan.js';
import { PawlError } from '../../errors.js';

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

interface ThrottleDevice {
  major: number;
  minor: number;
  rate: number;
}

/** The subset of the OCI runtime spec (1.0.2) pawl writes. */
export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: false;
    user: { uid: number; gid: number; additionalGids: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', string[]>;
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: true;
    apparmorProfile?: string;
    selinuxLabel?: string;
  };
  root: { path: string; readonly: true };
  hostname: string;
  mounts: OciMount[];
  linux: {
    uidMappings?: IdMapping[];
    gidMappings?: IdMapping[];
    namespaces: { type: string }[];
    cgroupsPath: string;
    resources: {
      devices: { allow: boolean; access: string }[];
      memory: { limit: number; swap?: number };
      cpu?: { quota: number; period: number };
      pids: { limit: number };
      blockIO?: { throttleReadBpsDevice: ThrottleDevice[]; throttleWriteBpsDevice: ThrottleDevice[] };
      unified?: Record<string, string>;
    };
    maskedPaths: string[];
    readonlyPaths: string[];
    seccomp?: OciSeccomp;
    mountLabel?: string;
  };
}

/** The facts of one run an OCI rendering needs beyond the plan. */
export interface OciFacts {
  /** The bundle's root: an empty per-run dir; mount points land in it, then it turns read-only. */
  root: string;
  /** The run's cgroup, relative to each hierarchy's root (v1) or to the cgroup2 mount (v2). */
  cgroupsPath: string;
  /**
   * Unprivileged host ids the sandbox's uid/gid (user) and its root (root, used by the runtime's
   * init while it sets up) map to.
   */
  hostIds: { user: number; root: number };
  /** A user namespace maps the ids; false where the host forbids user namespaces. */
  userns: boolean;
  /**
   * The layout's `source` mounts by slot: a path of pawl's own bound to each opened source
   * (fs/mounts.ts: runc/crun resolve mount sources in the container's mount namespace, where a
   * /proc/PID/fd link cannot be bound). Absent (explain): a placeholder naming it.
   */
  sources?: string[] | null;
}

const NO_CAPS = { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] };
const bindOptions = (readOnly: boolean) => ['rbind', readOnly ? 'ro' : 'rw', 'nosuid', 'nodev'];

function ociMount(m: Mount, sources: string[] | null | undefined): OciMount {
  switch (m.type) {
    case 'bind':
      return { destination: m.dst, type: 'bind', source: m.src, options: [...bindOptions(m.readOnly), ...(m.noexec ? ['noexec'] : [])] };
    case 'proc':
      return { destination: m.dst, type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] };
    case 'dev':
      // The runtime fills it with the plan's DEV_NODES and the fd links.
      return { destination: m.dst, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'noexec', 'strictatime', 'mode=755', 'size=65536'] };
    case 'tmpfs':
      return { destination: m.dst, type: 'tmpfs', source: 'tmpfs', options: [...(m.readOnly ? ['ro'] : []), ...(m.readOnly || m.noexec ? ['noexec'] : []), 'nosuid', 'nodev', `mode=${m.mode.toString(8)}`, `size=${m.size}`] };
    case 'source':
      return { destination: m.dst, type: 'bind', source: sources?.[m.slot] ?? `/proc/SUPERVISOR/fd/FD-OF(${m.what})`, options: [...bindOptions(m.readOnly), ...(m.noexec ? ['noexec'] : [])] };
  }
}

/** Pure: the bundle's config.json for this plan. */
export function ociConfig(plan: SandboxPlan, i: OciFacts): OciSpec {
  const { limits, rlimits, layout } = plan;
  const idMap = (inside: number): IdMapping[] => [
    { containerID: 0, hostID: i.hostIds.root, size: 1 },
    { containerID: inside, hostID: i.hostIds.user, size: 1 },
  ];
  // Without a user namespace the program runs as the unprivileged host id itself.
  const user = i.userns ? layout.user : { uid: i.hostIds.user, gid: i.hostIds.user };
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { ...user, additionalGids: [] },
      args: layout.argv,
      env: Object.entries(layout.env).map(([k, v]) => `${k}=${v}`),
      cwd: layout.cwd,
      capabilities: NO_CAPS,
      rlimits: [
        { type: 'RLIMIT_NOFILE', hard: rlimits.nofile, soft: rlimits.nofile },
        { type: 'RLIMIT_NPROC', hard: rlimits.nproc, soft: rlimits.nproc },
        { type: 'RLIMIT_FSIZE', hard: rlimits.fsize, soft: rlimits.fsize },
        { type: 'RLIMIT_CORE', hard: rlimits.core, soft: rlimits.core },
        { type: 'RLIMIT_CPU', hard: rlimits.cpu, soft: rlimits.cpu },
      ],
      noNewPrivileges: true,
      ...(plan.process.apparmorProfile ? { apparmorProfile: plan.process.apparmorProfile } : {}),
      ...(plan.process.selinuxLabel ? { selinuxLabel: plan.process.selinuxLabel } : {}),
    },
    root: { path: i.root, readonly: true },
    hostname: layout.hostname,
    mounts: layout.mounts.map((m) => ociMount(m, i.sources)),
    linux: {
      ...(i.userns ? { uidMappings: idMap(layout.user.uid), gidMappings: idMap(layout.user.gid) } : {}),
      namespaces: [
        { type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' },
        ...(plan.namespaces.network ? [{ type: 'network' }] : []),
        ...(i.userns ? [{ type: 'user' }] : []),
      ],
      // The same group pawl created and watches: the runtime's init joins it before the program
      // runs, and writes the same numbers pawl wrote.
      cgroupsPath: i.cgroupsPath,
      resources: {
        // Deny every device node; the runtime allows back its defaults (null, zero, tty...).
        devices: [{ allow: false, access: 'rwm' }],
        // swap = memory+swap on v1 (and swap.max = swap - limit = 0 on v2). noSwap is false only
        // where the degrade step let the run go without it (hostfacts/degrade.ts), as for pawl's driver.
        memory: { limit: limits.memoryBytes, ...(limits.noSwap ? { swap: limits.memoryBytes } : {}) },
        // A task's quota is pawl's to write at the hand-over (CgroupLimits.cpuAtDispatch): the
        // runtime writing it at create would hold the harness's boot to it.
        ...(limits.cpuAtDispatch ? {} : { cpu: { quota: limits.cpuQuotaUs, period: limits.cpuPeriodUs } }),
        pids: { limit: limits.pidsMax },
        ...(limits.io ? { blockIO: blockIO(limits.io) } : {}),
        // v2: one OOM kill takes the whole run down, as pawl's v2 driver sets it.
        ...(plan.cgroupVersion === 'v2' ? { unified: { 'memory.oom.group': '1' } } : {}),
      },
      maskedPaths: layout.proc.masked,
      readonlyPaths: layout.proc.readOnly,
      ...(plan.seccomp ? { seccomp: plan.seccomp.oci } : {}),
      ...(plan.process.mountLabel ? { mountLabel: plan.process.mountLabel } : {}),
    },
  };
}

function blockIO(io: IoLimit): NonNullable<OciSpec['linux']['resources']['blockIO']> {
  const devs = io.devices.map((device) => {
    const m = /^(\d+):(\d+)$/.exec(device);
    if (!m) throw new PawlError('RuntimeError', `io device "${device}" is not MAJ:MIN`);
    return { major: Number(m[1]), minor: Number(m[2]) };
  });
  return { throttleReadBpsDevice: devs.map((d) => ({ ...d, rate: io.readBps })), throttleWriteBpsDevice: devs.map((d) => ({ ...d, rate: io.writeBps })) };
}
