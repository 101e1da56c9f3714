// The runc/crun command lines pawl runs, as pure functions. Every call names pawl's own state dir
// (--root), so pawl only ever sees and touches its own containers.
//
// crun on a hybrid host: crun 1.8 refuses to run when a cgroup2 hierarchy with controllers is
// mounted beside the v1 ones ("cgroups in hybrid mode not supported, drop all controllers from
// cgroupv2"), even with --cgroup-manager=disabled; here cgroup2 holds hugetlb and the host's
// cgroup2 controllers are not pawl's to change. What crun looks at is the mount table, so each crun
// process pawl spawns gets a mount namespace of its own (unshare --mount, private propagation)
// in which the cgroup2 mount is unmounted before crun is exec'd. crun then sees a plain v1 host
// and drives the v1 hierarchies exactly as runc does. The host's mount namespace is never touched:
// the umount runs only after unshare(CLONE_NEWNS) succeeded, and only in that new namespace,
// which dies with the crun process (the container's own mount namespace is made from it).
import { join } from 'node:path';
import type { Launch } from '../types.js';

export type OciRuntimeName = 'runc' | 'crun';

export const UNSHARE = '/usr/bin/unshare';
export const UMOUNT = '/usr/bin/umount';

/** Where each runtime is looked for, and the Debian package that provides it. */
export const BINARIES: Record<OciRuntimeName, { paths: string[]; pkg: string }> = {
  runc: { paths: ['/usr/sbin/runc', '/usr/bin/runc', '/usr/local/sbin/runc', '/usr/local/bin/runc'], pkg: 'runc' },
  crun: { paths: ['/usr/bin/crun', '/usr/local/bin/crun'], pkg: 'crun' },
};

export interface OciCli {
  name: OciRuntimeName;
  binary: string;
  /** The runtime's --root: pawl's own state dir for this runtime and cgroup parent. */
  root: string;
  /** crun on a hybrid host: the cgroup2 mount to hide (see above). */
  hideUnified: string | null;
}

// "$1" is the mount to hide; the rest is the runtime's argv.
const HIDE_SCRIPT = `${UMOUNT} -- "$1" && shift && exec "$@"`;

/** The runtime's argv, wrapped for crun on a hybrid host. */
export function command(cli: OciCli, args: string[]): Launch {
  const argv = ['--root', cli.root, ...args];
  if (!cli.hideUnified) return { file: cli.binary, args: argv };
  return {
    file: UNSHARE,
    args: ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', HIDE_SCRIPT, 'pawl-crun', cli.hideUnified, cli.binary, ...argv],
  };
}

export const bundleFiles = (bundle: string) => ({
  config: join(bundle, 'config.json'),
  root: join(bundle, 'root'),
  pidFile: join(bundle, 'init.pid'),
  log: join(bundle, 'runtime.log'),
});

/**
 * `create`: the container exists (namespaces, mounts, cgroup joined, limits written) and its init
 * waits for `start`. fds 3..3+preserveFds-1 of the create process are passed into the container.
 */
export function createCommand(cli: OciCli, id: string, bundle: string, preserveFds: number): Launch {
  const f = bundleFiles(bundle);
  return command(cli, [
    '--log', f.log, '--log-format', 'json',
    'create', '--bundle', bundle, '--pid-file', f.pidFile, ...(preserveFds > 0 ? ['--preserve-fds', String(preserveFds)] : []), id,
  ]);
}

export const startCommand = (cli: OciCli, id: string) => command(cli, ['start', id]);
export const deleteCommand = (cli: OciCli, id: string) => command(cli, ['delete', '--force', id]);
export const stateCommand = (cli: OciCli, id: string) => command(cli, ['state', id]);
export const listCommand = (cli: OciCli) => command(cli, ['list', '--format', 'json']);
