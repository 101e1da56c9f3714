// bubblewrap's argv: a pure rendering of the run's plan (snapshot-tested, shown by explain).
import { statSync } from 'node:fs';
import type { Mount } from '../../plan/layout.js';
import type { SandboxPlan } from '../../plan/plan.js';

export const BWRAP = '/usr/bin/bwrap';

/** The fds of the spawned process that bwrap is told about (null: none). */
export interface BwrapFds {
  /** --seccomp: the compiled filter. */
  seccomp: number | null;
  /**
   * --block-fd: an fd holding a one-byte file, which bwrap reads only once the sandbox is fully
   * set up (mounts, namespaces, chroot, privileges dropped), just before it loads the filter and
   * runs the program. Its offset, shared with the supervisor's own fd, is the set-up record no
   * program can forge: it never sees the fd (bwrap closes it).
   */
  ready: number | null;
  /** --info-fd: where bwrap tells the host pid of the sandbox's init, so it can be reaped. */
  info: number | null;
  /** The layout's `source` mounts: slot N is fd sources + N (bwrap closes each once bound). */
  sources: number;
}

/** The /proc entries to mask, split by kind: a file is covered by /dev/null, a dir by an empty tmpfs. */
export interface ProcMasks {
  files: string[];
  dirs: string[];
}

const hostMasks = new Map<string, ProcMasks>();

/**
 * The masked paths that exist in this kernel's /proc (the sandbox's /proc is a new procfs of the
 * same kernel). bwrap cannot mount over a path procfs does not have, so absent ones are left out
 * (runc and crun skip them the same way).
 */
export function hostProcMasks(paths: string[]): ProcMasks {
  const key = paths.join('\0');
  let masks = hostMasks.get(key);
  if (!masks) {
    masks = { files: [], dirs: [] };
    for (const path of paths) {
      const st = statSync(path, { throwIfNoEntry: false });
      if (st) (st.isDirectory() ? masks.dirs : masks.files).push(path);
    }
    hostMasks.set(key, masks);
  }
  return masks;
}

function mountArgs(m: Mount, plan: SandboxPlan, masks: ProcMasks, fds: BwrapFds): string[] {
  switch (m.type) {
    case 'bind':
      return [`${m.readOnly ? '--ro-bind' : '--bind'}${m.ifExists ? '-try' : ''}`, m.src, m.dst];
    case 'proc':
      return [
        // The rootfs links go in before the kernel filesystems (they only need the empty root).
        ...Object.entries(plan.layout.symlinks).flatMap(([link, target]) => ['--symlink', target, link]),
        '--proc', m.dst,
        ...masks.files.flatMap((f) => ['--ro-bind', '/dev/null', f]),
        ...masks.dirs.flatMap((d) => ['--perms', '0555', '--tmpfs', d, '--remount-ro', d]),
      ];
    case 'dev':
      // bwrap's --dev: the plan's DEV_NODES bound from the host, the fd links, and (bwrap's own
      // additions) a new devpts instance at /dev/pts and an empty /dev/shm dir.
      return ['--dev', m.dst];
    case 'tmpfs':
      return ['--perms', m.mode.toString(8).padStart(4, '0'), '--size', String(m.size), '--tmpfs', m.dst, ...(m.readOnly ? ['--remount-ro', m.dst] : [])];
    case 'source':
      return [m.readOnly ? '--ro-bind-fd' : '--bind-fd', String(fds.sources + m.slot), m.dst];
  }
}

export function bwrapArgs(plan: SandboxPlan, fds: BwrapFds, masks: ProcMasks = hostProcMasks(plan.layout.proc.masked)): string[] {
  const { layout } = plan;
  const args = [
    // A new user namespace maps the sandbox's uid to the (unprivileged) host id bwrap runs as;
    // every other namespace is new too, and network unless the policy shares the host's.
    '--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup',
    ...(plan.namespaces.network ? ['--unshare-net'] : []),
    '--uid', String(layout.user.uid), '--gid', String(layout.user.gid),
    '--cap-drop', 'ALL',
    '--die-with-parent', '--new-session',
    '--hostname', layout.hostname,
    // bwrap's / is a fresh tmpfs: the mounts land in it, and / itself is remounted read-only
    // last, after every mount point exists.
    ...layout.mounts.flatMap((m) => mountArgs(m, plan, masks, fds)),
    // (layout.proc.readOnly needs nothing here: those files belong to the host's root, and the
    // sandbox's user namespace has no rights over them.)
    '--remount-ro', '/', '--chdir', layout.cwd, '--clearenv',
  ];
  for (const [k, v] of Object.entries(layout.env)) args.push('--setenv', k, v);
  // SELinux: bwrap labels its program and its tmpfs mounts itself.
  if (plan.process.selinuxLabel) args.push('--exec-label', plan.process.selinuxLabel);
  if (plan.process.mountLabel) args.push('--file-label', plan.process.mountLabel);
  if (fds.ready !== null) args.push('--block-fd', String(fds.ready));
  if (fds.info !== null) args.push('--info-fd', String(fds.info));
  if (fds.seccomp !== null) args.push('--seccomp', String(fds.seccomp));
  args.push('--', ...layout.argv);
  return args;
}
