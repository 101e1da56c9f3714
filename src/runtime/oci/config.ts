// The OCI runtime spec's config.json as a pure function of the policy and a few run facts, for
// runc and crun alike (snapshot-tested, printed by `pawl explain --runtime runc`). It builds the
// same sandbox as bwrap's argv: an empty per-run root, read-only once set up, with pawl's rootfs
// dirs bound into it, fresh /proc, a minimal /dev, a size-capped /tmp and /workspace.
import type { Policy } from '../../config/policy.js';
import type { CgroupLimits, IoLimit } from '../../cgroup/types.js';
import type { OciSeccomp } from '../../seccomp/index.js';
import { EGRESS_SOCKET, FULL_NETWORK_FILES, ROOTFS_MOUNTS } from '../../rootfs/layout.js';
import type { Rlimits } from '../../supervisor/shim.js';
import { BASE_ENV } from '../bwrap/argv.js';
import { PawlError } from '../../errors.js';
import { ociLsmFields } from '../../lsm/apply.js';
import { ociFsMounts } from '../../fs/render.js';

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
      cpu: { quota: number; period: number };
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

export interface OciConfigInput {
  policy: Policy;
  /** Host path of pawl's read-only rootfs. */
  rootfs: string;
  /** The bundle's root: an empty per-run dir; mount points land in it, then it turns read-only. */
  root: string;
  workspace: string;
  command: string[];
  limits: CgroupLimits;
  rlimits: Rlimits;
  /** The run's cgroup, relative to each hierarchy's root (v1) or to the cgroup2 mount (v2). */
  cgroupsPath: string;
  cgroupVersion: 'v1' | 'v2';
  /**
   * Unprivileged host ids the sandbox's uid/gid (user) and its root (root, used by the runtime's
   * init while it sets up) map to.
   */
  hostIds: { user: number; root: number };
  /** A user namespace maps the ids; false where the host forbids user namespaces. */
  userns: boolean;
  seccomp: OciSeccomp | null;
  /** Restricted network: host path of the egress proxy socket. */
  egressSocket?: string | null;
  /** Paths of the run's opened mount sources (fs/mounts.ts ociSourcePaths). */
  mountSources?: string[] | null;
}

/** /proc entries that leak host facts or allow host-wide writes: Docker's defaults (no /sys is mounted). */
export const MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/sched_debug', '/proc/scsi',
  '/proc/timer_list', '/proc/timer_stats',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

const NO_CAPS = { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] };
const bindOptions = (readOnly: boolean) => ['rbind', readOnly ? 'ro' : 'rw', 'nosuid', 'nodev'];

export function ociConfig(i: OciConfigInput): OciSpec {
  const { policy, limits, rlimits } = i;
  const { security, resources, network } = policy;
  const mounts: OciMount[] = [
    ...ROOTFS_MOUNTS.map((dir) => ({ destination: dir, type: 'bind', source: `${i.rootfs}${dir}`, options: bindOptions(true) })),
    ...(network.mode === 'full' ? FULL_NETWORK_FILES.map((f) => ({ destination: f, type: 'bind', source: f, options: bindOptions(true) })) : []),
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    // The runtime fills it with null, zero, full, random, urandom, tty and the fd links.
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'noexec', 'strictatime', 'mode=755', 'size=65536'] },
    { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', `size=${resources.tmpSize}`] },
    { destination: '/workspace', type: 'bind', source: i.workspace, options: bindOptions(false) },
    ...(i.egressSocket ? [{ destination: EGRESS_SOCKET, type: 'bind', source: i.egressSocket, options: bindOptions(true) }] : []),
    ...ociFsMounts(policy, i.rootfs, i.mountSources),
  ];
  const idMap = (inside: number): IdMapping[] => [
    { containerID: 0, hostID: i.hostIds.root, size: 1 },
    { containerID: inside, hostID: i.hostIds.user, size: 1 },
  ];
  // Without a user namespace the program runs as the unprivileged host id itself.
  const user = i.userns ? { uid: security.uid, gid: security.gid } : { uid: i.hostIds.user, gid: i.hostIds.user };
  const env = { ...BASE_ENV, ...policy.env, PWD: '/workspace' };
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { ...user, additionalGids: [] },
      args: i.command,
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      cwd: '/workspace',
      capabilities: NO_CAPS,
      rlimits: [
        { type: 'RLIMIT_NOFILE', hard: rlimits.nofile, soft: rlimits.nofile },
        { type: 'RLIMIT_NPROC', hard: rlimits.nproc, soft: rlimits.nproc },
        { type: 'RLIMIT_FSIZE', hard: rlimits.fsize, soft: rlimits.fsize },
        { type: 'RLIMIT_CORE', hard: rlimits.core, soft: rlimits.core },
        { type: 'RLIMIT_CPU', hard: rlimits.cpu, soft: rlimits.cpu },
      ],
      noNewPrivileges: true,
      ...(security.apparmorProfile ? { apparmorProfile: security.apparmorProfile } : {}),
      ...ociLsmFields(policy).process, // src/lsm/apply.ts: generated AppArmor profile, SELinux label
    },
    root: { path: i.root, readonly: true },
    hostname: 'pawl',
    mounts,
    linux: {
      ...(i.userns ? { uidMappings: idMap(security.uid), gidMappings: idMap(security.gid) } : {}),
      namespaces: [
        { type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' },
        ...(network.mode === 'full' ? [] : [{ type: 'network' }]),
        ...(i.userns ? [{ type: 'user' }] : []),
      ],
      // The same group pawl created and watches: the runtime's init joins it before the program
      // runs, and writes the same numbers pawl wrote.
      cgroupsPath: i.cgroupsPath,
      resources: {
        // Deny every device node; the runtime allows back its defaults (null, zero, tty...).
        devices: [{ allow: false, access: 'rwm' }],
        // swap = memory+swap on v1 (and swap.max = swap - limit = 0 on v2). Where the host has no
        // swap accounting and the policy allows that, pawl's own driver skips it: so does this.
        memory: { limit: limits.memoryBytes, ...(limits.noSwap && !policy.allowDegraded.includes('swap-limit') ? { swap: limits.memoryBytes } : {}) },
        cpu: { quota: limits.cpuQuotaUs, period: limits.cpuPeriodUs },
        pids: { limit: limits.pidsMax },
        ...(limits.io ? { blockIO: blockIO(limits.io) } : {}),
        // v2: one OOM kill takes the whole run down, as pawl's v2 driver sets it.
        ...(i.cgroupVersion === 'v2' ? { unified: { 'memory.oom.group': '1' } } : {}),
      },
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      ...(i.seccomp ? { seccomp: i.seccomp } : {}),
      ...ociLsmFields(policy).linux, // src/lsm/apply.ts: SELinux mount label
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
