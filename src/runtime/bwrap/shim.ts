// The shim closes the cgroup placement race (HOST-FACTS.md): a tiny /bin/sh writes its OWN pid
// into every cgroup.procs, then execs the chain prlimit -> setpriv -> runtime. Everything the
// runtime forks is therefore born inside the run's cgroup; nothing untrusted ever runs outside.
// Exit status 125 means the shim itself failed (the cgroup could not be entered).
import type { Rlimits } from '../../plan/rlimits.js';
import type { Launch } from '../types.js';

export const SHIM_FAILED = 125;

const SCRIPT = [
  'n=$1; shift',
  'while [ "$n" -gt 0 ]; do',
  '  echo $$ > "$1" || { echo "$0: cannot enter cgroup $1" >&2; exit 125; }',
  '  shift; n=$((n-1))',
  'done',
  // A fresh audit session for the run (root only): the kernel's seccomp audit records carry it,
  // which is how a SIGSYS death is traced back to the system call that caused it.
  'if [ "$1" != - ]; then echo "$1" 2>/dev/null > /proc/self/loginuid; fi; shift',
  'exec "$@"',
].join('\n');

/**
 * Pure: the full argv to spawn. `hostId` is the unprivileged uid/gid the runtime drops to when
 * pawl runs as root (null: keep the caller's ids, e.g. non-root with a delegated cgroup).
 */
export function shimCommand(procsFiles: string[], rlimits: Rlimits, hostId: number | null, launch: Launch, tag = 'pawl-shim'): Launch {
  const prlimit = [
    '/usr/bin/prlimit',
    `--nofile=${rlimits.nofile}`,
    // RLIMIT_NPROC counts every process of the real uid. Only a per-run host id makes it a per-run
    // limit; without one (not root) it would also count the supervisor and the user's other
    // sandboxes, stop a fork bomb before pids.max does (so pids.events never says so) and let one
    // run starve another. There pids.max alone limits the run.
    ...(hostId === null ? [] : [`--nproc=${rlimits.nproc}`]),
    `--fsize=${rlimits.fsize}`,
    `--core=${rlimits.core}`,
    `--cpu=${rlimits.cpu}`,
    '--',
  ];
  const setpriv = hostId === null ? [] : ['/usr/bin/setpriv', `--reuid=${hostId}`, `--regid=${hostId}`, '--clear-groups', '--'];
  return {
    file: '/bin/sh',
    // $0 is the tag its errors carry: a per-run secret, so output the sandbox writes cannot pass for them.
    args: ['-c', SCRIPT, tag, String(procsFiles.length), ...procsFiles, hostId === null ? '-' : String(hostId), ...prlimit, ...setpriv, launch.file, ...launch.args],
  };
}
