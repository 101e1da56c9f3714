// The shim closes the cgroup placement race (HOST-FACTS.md): a tiny /bin/sh writes its OWN pid
// into every cgroup.procs, waits until the supervisor has set its rlimits (releaseShim: prlimit(2)
// on its pid, then a newline on fd GO_FD), then execs setpriv -> runtime. Everything the runtime
// forks is therefore born inside the run's cgroup and under the run's rlimits; nothing untrusted
// ever runs outside. (prlimit(1) in the chain cost one more exec: ~4 ms of every cold start here.)
// RLIMIT_NOFILE is the shell's own to set, last (`ulimit -n`, soft and hard alike in dash, bash
// and busybox): its redirections save fds above 9, which a low limit with many bind sources
// (fds 9 and up) would leave no room for.
// Exit status 125 means the shim itself failed (the cgroup could not be entered, a limit not
// set, or the supervisor never released it).
import { closeSync, writeSync } from 'node:fs';
import type { Rlimits } from '../../plan/rlimits.js';
import { errnoCode, loadLibc } from '../../util/libc.js';
import type { Launch } from '../types.js';

export const SHIM_FAILED = 125;
/** The shim's end of its release pipe; closed before the exec, so the sandbox never holds it. */
export const GO_FD = 8;

const SCRIPT = [
  'n=$1; shift',
  'while [ "$n" -gt 0 ]; do',
  '  echo $$ > "$1" || { echo "$0: cannot enter cgroup $1" >&2; exit 125; }',
  '  shift; n=$((n-1))',
  'done',
  // A fresh audit session for the run (root only): the kernel's seccomp audit records carry it,
  // which is how a SIGSYS death is traced back to the system call that caused it.
  'if [ "$1" != - ]; then echo "$1" 2>/dev/null > /proc/self/loginuid; fi; shift',
  // The release (GO_FD): by now the rlimits are set; EOF means the supervisor is gone or refused.
  'read -r _ <&8 || { echo "$0: not released by the supervisor" >&2; exit 125; }',
  'exec 8<&-',
  'ulimit -n "$1" || { echo "$0: cannot set the limit of open files to $1" >&2; exit 125; }; shift',
  'exec "$@"',
].join('\n');

/**
 * Pure: the full argv to spawn, with fd GO_FD the shim's end of its release pipe. `hostId` is the
 * unprivileged uid/gid the runtime drops to when pawl runs as root (null: keep the caller's ids,
 * e.g. non-root with a delegated cgroup).
 */
export function shimCommand(procsFiles: string[], nofile: number, hostId: number | null, launch: Launch, tag = 'pawl-shim'): Launch {
  const setpriv = hostId === null ? [] : ['/usr/bin/setpriv', `--reuid=${hostId}`, `--regid=${hostId}`, '--clear-groups', '--'];
  return {
    file: '/bin/sh',
    // $0 is the tag its errors carry: a per-run secret, so output the sandbox writes cannot pass for them.
    args: ['-c', SCRIPT, tag, String(procsFiles.length), ...procsFiles, hostId === null ? '-' : String(hostId), String(nofile), ...setpriv, launch.file, ...launch.args],
  };
}

/** asm-generic/resource.h (x86_64 and aarch64 alike). RLIMIT_NOFILE (7) is the shim's own (above). */
const RLIMIT = { cpu: 0, fsize: 1, core: 4, nproc: 6 } as const;

/** Pure: the rlimits the supervisor sets on the shim, soft and hard alike, as [name, resource, value]. */
export function shimRlimits(rlimits: Rlimits, hostId: number | null): [keyof typeof RLIMIT, number, number][] {
  return (Object.keys(RLIMIT) as (keyof typeof RLIMIT)[])
    // RLIMIT_NPROC counts every process of the real uid. Only a per-run host id makes it a per-run
    // limit; without one (not root) it would also count the supervisor and the user's other
    // sandboxes, stop a fork bomb before pids.max does (so pids.events never says so) and let one
    // run starve another. There pids.max alone limits the run.
    .filter((name) => name !== 'nproc' || hostId !== null)
    .map((name) => [name, RLIMIT[name], rlimits[name]]);
}

/**
 * Set the shim's rlimits (prlimit(2) on its pid: called before anything waits for it, so the pid
 * is still the shim's, a zombie at worst), then release it through `goFd` (the parent's end of
 * its release pipe, closed here). Throws naming the limit the kernel refused (a value over the
 * host's hard limit needs CAP_SYS_RESOURCE); the shim is then not released and exits on its own
 * (EOF) without running anything. A shim that already ended (ESRCH: it could not enter its
 * cgroup) is left to say why on its stderr.
 */
export function releaseShim(pid: number, rlimits: Rlimits, hostId: number | null, goFd: number): void {
  try {
    const libc = loadLibc();
    const limit = Buffer.alloc(16);
    for (const [name, resource, value] of shimRlimits(rlimits, hostId)) {
      limit.writeBigUInt64LE(BigInt(value), 0);
      limit.writeBigUInt64LE(BigInt(value), 8);
      if (libc.prlimit(pid, resource, limit, null) !== 0) {
        const code = errnoCode();
        if (code === 'ESRCH') return;
        throw new Error(`cannot set RLIMIT_${name.toUpperCase()} to ${value}: ${code} (a limit above the host's hard limit needs CAP_SYS_RESOURCE)`);
      }
    }
    try {
      writeSync(goFd, '\n');
    } catch (e) {
      // The shim ended already (no reader left: EPIPE), and says why on its stderr.
      if ((e as NodeJS.ErrnoException).code !== 'EPIPE') throw e;
    }
  } finally {
    closeSync(goFd);
  }
}
