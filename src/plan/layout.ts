// The sandbox's filesystem and process view, written ONCE: every backend renders this list
// (runtime/bwrap/argv.ts, runtime/oci/config.ts) and `pawl explain` prints it as is. A mount,
// masked path or variable added here appears in every backend and in explain together.
import type { Policy } from '../config/policy.js';
import { EGRESS_SOCKET, FULL_NETWORK_FILES, ROOTFS_MOUNTS, ROOTFS_SYMLINKS } from '../rootfs/layout.js';
import { BLOCKED_FILE } from '../rootfs/landlock.js';
import { blockedPlan, policyMounts } from '../fs/mounts.js';
import { mountedNoexec } from '../lsm/landlock/rules.js';

/** One mount, in the order it is made (a later one may land inside an earlier one). */
export type Mount =
  /** A host path bound in; `ifExists`: skipped where the host has no such file. */
  | { type: 'bind'; dst: string; src: string; readOnly: boolean; ifExists?: boolean; noexec?: boolean }
  /** A new procfs of the sandbox's pid namespace. */
  | { type: 'proc'; dst: '/proc' }
  /** A small tmpfs holding only the device nodes in DEV_NODES and the fd links. */
  | { type: 'dev'; dst: '/dev' }
  /** readOnly: remounted read-only once made (a blocked dir's empty cover). */
  | { type: 'tmpfs'; dst: string; size: number; mode: number; readOnly?: boolean; noexec?: boolean }
  /**
   * A host file or dir the supervisor opened without following links (fs/mounts.ts), handed to
   * the runtime by that open fd (`slot`: its index among the run's opened sources), never by a
   * name the runtime would resolve again. `what`: the policy's name for it (explain).
   */
  | { type: 'source'; dst: string; readOnly: boolean; slot: number; what: string; noexec?: boolean };

export interface Layout {
  /** `/` is an empty per-run dir (bwrap: a tmpfs), read-only once every mount point exists. */
  mounts: Mount[];
  /** Links made in the empty root (Debian's merged /usr). */
  symlinks: Record<string, string>;
  /**
   * /proc entries that leak host facts or allow host-wide writes (Docker's defaults). `masked`
   * are covered (a file by /dev/null, a dir by an empty read-only tmpfs) where this kernel has
   * them; `readOnly` cannot be written (OCI: remounted read-only; bwrap: they belong to the
   * initial user namespace's root, which the sandbox's user namespace has no rights over).
   */
  proc: { masked: string[]; readOnly: string[] };
  /** The whole environment: nothing is inherited. */
  env: Record<string, string>;
  cwd: string;
  /** The ids the program runs as inside its user namespace. */
  user: { uid: number; gid: number };
  hostname: string;
  /** The program's argv inside the sandbox (a wrapper's argv first, when there is one). */
  argv: string[];
}

/** Host paths of one run that the layout names. */
export interface RunPaths {
  /** pawl's read-only rootfs. */
  rootfs: string;
  /** The run's scratch workspace, bound read-write at /workspace. */
  workspace: string;
  /** Restricted network: the run's egress proxy socket (bound at EGRESS_SOCKET). */
  egressSocket: string | null;
}

export const MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/sched_debug', '/proc/scsi',
  '/proc/timer_list', '/proc/timer_stats',
  // The whole host's pressure figures (another run's memory pressure: a side channel), and a
  // trigger any process may register on them (a poller woken by the host's stalls).
  '/proc/pressure',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];
/** What /dev holds in every backend: these nodes (bound from the host's), plus the fd/stdin/stdout/stderr links. */
export const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

/** Variables every sandbox gets; the policy's env is laid over them. */
export const BASE_ENV: Record<string, string> = {
  PATH: '/usr/bin',
  HOME: '/workspace',
  TMPDIR: '/tmp',
  LANG: 'C.UTF-8',
};
export const WORKSPACE = '/workspace';

/**
 * Pure: the layout of one run. `wrapper` is an argv run before the program inside the sandbox
 * (e.g. a confinement helper that then execs the program); `extraMounts` come after pawl's own.
 */
export function sandboxLayout(policy: Policy, paths: RunPaths, command: string[], opts: { wrapper?: string[]; extraMounts?: Mount[] } = {}): Layout {
  const { network, resources, security } = policy;
  const mounts: Mount[] = [
    ...ROOTFS_MOUNTS.map((dir): Mount => ({ type: 'bind', dst: dir, src: `${paths.rootfs}${dir}`, readOnly: true })),
    // Network mode full: names resolve as on the host.
    ...(network.mode === 'full' ? FULL_NETWORK_FILES.map((f): Mount => ({ type: 'bind', dst: f, src: f, readOnly: true, ifExists: true })) : []),
    { type: 'proc', dst: '/proc' },
    { type: 'dev', dst: '/dev' },
    // noexec: a tree the task writes (mountedNoexec; bwrap's tmpfs cannot be, its binds keep the source's own flags).
    { type: 'tmpfs', dst: '/tmp', size: resources.tmpSize, mode: 0o1777, ...noexec(policy, '/tmp') },
    { type: 'bind', dst: WORKSPACE, src: paths.workspace, readOnly: false, ...noexec(policy, WORKSPACE) },
    ...(paths.egressSocket ? [{ type: 'bind', dst: EGRESS_SOCKET, src: paths.egressSocket, readOnly: true } as Mount] : []),
    // The policy's binds, volumes and tmpfs mounts, then the covers over its blocked paths (fs/).
    ...fsLayoutMounts(policy, paths.rootfs),
    ...(opts.extraMounts ?? []),
  ];
  return {
    mounts,
    symlinks: ROOTFS_SYMLINKS,
    proc: { masked: MASKED_PATHS, readOnly: READONLY_PATHS },
    // PWD as a login would set it (bwrap sets it from --chdir too; runc/crun only from this list).
    env: { ...BASE_ENV, ...policy.env, PWD: WORKSPACE },
    cwd: WORKSPACE,
    user: { uid: security.uid, gid: security.gid },
    hostname: 'pawl',
    argv: [...(opts.wrapper ?? []), ...command],
  };
}

/** `{ noexec: true }` for a tree the task writes that is mounted noexec (mountedNoexec), else nothing. */
const noexec = (policy: Policy, target: string, readOnly = false): { noexec?: true } => (!readOnly && mountedNoexec(policy, target) ? { noexec: true } : {});

/**
 * The policy's filesystem section as mounts of the layout: binds and volumes by opened fd (the
 * supervisor opens them without following links: fs/mounts.ts), tmpfs mounts with their size,
 * then the covers that keep blocked paths out. Pure given the rootfs tree (which blocked paths
 * exist there decides their cover).
 */
export function fsLayoutMounts(policy: Policy, rootfs: string): Mount[] {
  const own = policyMounts(policy).map((m): Mount => {
    switch (m.kind) {
      case 'bind':
        return { type: 'source', dst: m.target, readOnly: m.readonly, slot: m.slot, what: m.source, ...noexec(policy, m.target, m.readonly) };
      case 'volume':
        return { type: 'source', dst: m.target, readOnly: m.readonly, slot: m.slot, what: `volume ${m.volume}`, ...noexec(policy, m.target, m.readonly) };
      case 'tmpfs':
        return { type: 'tmpfs', dst: m.target, size: m.size, mode: 0o1777, ...noexec(policy, m.target) };
    }
  });
  const covers = blockedPlan(policy, rootfs).covers.flatMap((c): Mount[] =>
    c.kind === 'blocked-dir' ? [{ type: 'tmpfs', dst: c.target, size: 4096, mode: 0, readOnly: true }]
      : c.kind === 'blocked-file' ? [{ type: 'bind', dst: c.target, src: `${rootfs}${BLOCKED_FILE}`, readOnly: true }]
      : [],
  );
  return [...own, ...covers];
}
