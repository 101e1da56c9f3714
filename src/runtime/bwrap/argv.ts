// bubblewrap's argv as a pure function of the sandbox spec (snapshot-tested, shown by explain).
import { statSync } from 'node:fs';
import { EGRESS_SOCKET, FULL_NETWORK_FILES, ROOTFS_MOUNTS, ROOTFS_SYMLINKS } from '../../rootfs/layout.js';
import { MASKED_PATHS } from '../oci/config.js';
import type { Launch, SandboxSpec } from '../types.js';
import { bwrapLsmArgs, bwrapLsmLaunch } from '../../lsm/apply.js';
import { bwrapFsArgs } from '../../fs/render.js';

export const BWRAP = '/usr/bin/bwrap';

/** Variables every sandbox gets; the policy's env is laid over them. Nothing is inherited. */
export const BASE_ENV: Record<string, string> = {
  PATH: '/usr/bin',
  HOME: '/workspace',
  TMPDIR: '/tmp',
  LANG: 'C.UTF-8',
};

/** The /proc entries to mask, split by kind: a file is covered by /dev/null, a dir by an empty tmpfs. */
export interface ProcMasks {
  files: string[];
  dirs: string[];
}

let hostMasks: ProcMasks | null = null;

/**
 * OCI's maskedPaths that exist in this kernel's /proc (the sandbox's /proc is a new procfs of the
 * same kernel). bwrap cannot mount over a path procfs does not have, so absent ones are left out.
 */
export function hostProcMasks(): ProcMasks {
  if (hostMasks) return hostMasks;
  const masks: ProcMasks = { files: [], dirs: [] };
  for (const path of MASKED_PATHS) {
    const st = statSync(path, { throwIfNoEntry: false });
    if (st) (st.isDirectory() ? masks.dirs : masks.files).push(path);
  }
  return (hostMasks = masks);
}

export function bwrapArgs(spec: SandboxSpec, masks: ProcMasks = hostProcMasks()): string[] {
  const { policy } = spec;
  const { security, resources, network } = policy;
  const args = [
    // A new user namespace maps the sandbox's uid to the (unprivileged) host id bwrap runs as;
    // every other namespace is new too, and network unless the policy shares the host's.
    '--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup',
    ...(network.mode === 'full' ? [] : ['--unshare-net']),
    '--uid', String(security.uid), '--gid', String(security.gid),
    '--cap-drop', 'ALL',
    '--die-with-parent', '--new-session',
    '--hostname', 'pawl',
    // bwrap's / is a fresh tmpfs: the rootfs dirs are bound into it read-only, and / itself is
    // remounted read-only last, after every mount point exists.
    ...ROOTFS_MOUNTS.flatMap((dir) => ['--ro-bind', `${spec.rootfs}${dir}`, dir]),
    ...(network.mode === 'full' ? FULL_NETWORK_FILES.flatMap((f) => ['--ro-bind-try', f, f]) : []),
    ...Object.entries(ROOTFS_SYMLINKS).flatMap(([link, target]) => ['--symlink', target, link]),
    '--proc', '/proc',
    // The same /proc entries runc and crun mask (kernel memory, keys, timers, hardware), read-only.
    ...masks.files.flatMap((f) => ['--ro-bind', '/dev/null', f]),
    ...masks.dirs.flatMap((d) => ['--perms', '0555', '--tmpfs', d, '--remount-ro', d]),
    '--dev', '/dev',
    '--perms', '1777', '--size', String(resources.tmpSize), '--tmpfs', '/tmp',
    '--bind', spec.workspace, '/workspace',
    ...(spec.egressSocket ? ['--ro-bind', spec.egressSocket, EGRESS_SOCKET] : []),
  ];
  args.push(...bwrapFsArgs(policy, spec.rootfs));
  args.push('--remount-ro', '/', '--chdir', '/workspace', '--clearenv');
  for (const [k, v] of Object.entries({ ...BASE_ENV, ...policy.env })) args.push('--setenv', k, v);
  if (spec.readyFd != null) args.push('--block-fd', String(spec.readyFd));
  if (spec.infoFd != null) args.push('--info-fd', String(spec.infoFd));
  if (spec.seccompFd !== null) args.push('--seccomp', String(spec.seccompFd));
  args.push(...bwrapLsmArgs(policy)); // src/lsm/apply.ts: SELinux labels
  args.push('--', ...spec.command);
  return args;
}

export const bwrapBackend = {
  name: 'bwrap' as const,
  launch(spec: SandboxSpec): Launch {
    return bwrapLsmLaunch({ file: BWRAP, args: bwrapArgs(spec) }, spec.policy); // src/lsm/apply.ts: AppArmor via aa-exec
  },
};
