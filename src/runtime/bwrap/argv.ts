// bubblewrap's argv as a pure function of the sandbox spec (snapshot-tested, shown by explain).
import { EGRESS_SOCKET, ROOTFS_MOUNTS, ROOTFS_SYMLINKS } from '../../rootfs/layout.js';
import type { Launch, SandboxSpec } from '../types.js';

export const BWRAP = '/usr/bin/bwrap';

/** Variables every sandbox gets; the policy's env is laid over them. Nothing is inherited. */
export const BASE_ENV: Record<string, string> = {
  PATH: '/usr/bin',
  HOME: '/workspace',
  TMPDIR: '/tmp',
  LANG: 'C.UTF-8',
};

export function bwrapArgs(spec: SandboxSpec): string[] {
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
    ...Object.entries(ROOTFS_SYMLINKS).flatMap(([link, target]) => ['--symlink', target, link]),
    '--proc', '/proc',
    '--dev', '/dev',
    '--perms', '1777', '--size', String(resources.tmpSize), '--tmpfs', '/tmp',
    '--bind', spec.workspace, '/workspace',
    ...(spec.egressSocket ? ['--ro-bind', spec.egressSocket, EGRESS_SOCKET] : []),
  ];
  for (const b of policy.filesystem.binds) args.push(b.readOnly ? '--ro-bind' : '--bind', b.src, b.dst);
  args.push('--remount-ro', '/', '--chdir', '/workspace', '--clearenv');
  for (const [k, v] of Object.entries({ ...BASE_ENV, ...policy.env })) args.push('--setenv', k, v);
  if (spec.seccompFd !== null) args.push('--seccomp', String(spec.seccompFd));
  args.push('--', ...spec.command);
  return args;
}

export const bwrapBackend = {
  name: 'bwrap' as const,
  launch(spec: SandboxSpec): Launch {
    return { file: BWRAP, args: bwrapArgs(spec) };
  },
};
