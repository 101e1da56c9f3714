// The shim closes the cgroup placement race (HOST-FACTS.md): a tiny static program (shim.c)
// writes its OWN pid into every cgroup.procs, waits until the supervisor has set its rlimits
// (releaseShim: prlimit(2) on its pid, then a newline on fd GO_FD), sets RLIMIT_NOFILE, drops to
// the run's host id and execs the runtime. Everything the runtime forks is therefore born inside
// the run's cgroup and under the run's rlimits; nothing untrusted ever runs outside. (It was
// /bin/sh then setpriv: two dynamically linked execs, ~6 ms of every start here; prlimit(1)
// before them one more, ~4 ms.)
// Exit status 125 means the shim itself failed (the cgroup could not be entered, a limit not
// set, the ids not dropped, or the supervisor never released it).
import { closeSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../config/host.js';
import type { Rlimits } from '../../plan/rlimits.js';
import { errnoCode, loadLibc } from '../../util/libc.js';
import { staticBinary } from '../../util/static-binary.js';
import type { Launch } from '../types.js';

export const SHIM_FAILED = 125;
/** The shim's end of its release pipe; closed before the exec, so the sandbox never holds it. */
export const GO_FD = 8;
/** Where the shim is built (util/static-binary.ts): beside the rest of pawl's built code. */
export const SHIM_BINARY = join(PACKAGE_ROOT, 'dist', 'pawl-shim');

/** The shim, built from shim.c unless already built from this very source. */
export function ensureShim(): Promise<string> {
  return staticBinary(join(PACKAGE_ROOT, 'src', 'runtime', 'bwrap', 'shim.c'), SHIM_BINARY, `pawl's shim (${SHIM_BINARY})`);
}

/**
 * Pure: the full argv to spawn, with fd GO_FD the shim's end of its release pipe. `hostId` is the
 * unprivileged uid/gid the runtime drops to when pawl runs as root (null: keep the caller's ids,
 * e.g. non-root with a delegated cgroup). `tag` prefixes the shim's errors: a per-run secret, so
 * output the sandbox writes cannot pass for them.
 */
export function shimCommand(procsFiles: string[], nofile: number, hostId: number | null, launch: Launch, tag = 'pawl-shim'): Launch {
  return {
    file: SHIM_BINARY,
    args: [tag, String(procsFiles.length), ...procsFiles, hostId === null ? '-' : String(hostId), String(nofile), '--', launch.file, ...launch.args],
  };
}

/** asm-generic/resource.h (x86_64 and aarch64 alike). RLIMIT_NOFILE (7) is the shim's own (shim.c). */
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
