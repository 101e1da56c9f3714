// How pawl learns an OCI sandbox's exit status. With `create` + `start` the container's init is
// not pawl's child: it is the child of the `runc create` process, which exits as soon as the
// container exists. A child subreaper (prctl PR_SET_CHILD_SUBREAPER) gets such orphans instead of
// the host's init, so the supervisor becomes the init's parent and can waitpid() it like any child
// of its own: the real status, signal included, and no zombie left behind.
//
// The flag is process-wide and would also hand this process the orphans of anything else it
// runs (a bwrap killed together with its init, a library user's own children), which nobody
// would reap. So it is held only while a `create` runs: the init is adopted the moment its
// creator exits, and stays this process's child after the flag is dropped.
//
// libuv reaps only the pids it spawned (waitpid per pid, never -1), so it never steals the init's
// status, and reaping by pid here never steals one of its children. SIGCHLD tells when to look
// (each look tries every pid waited for, so signals coalesced into one lose nothing, and a pid is
// tried at once when it is added); a poll once a second only covers a listener someone removed.
// (A 100 ms poll was a wake-up of its own beside the stats poll: ~0.2 % of a core per run here.)
import { lastErrno, loadLibc } from '../../util/libc.js';
import { signalName } from '../../util/signals.js';
import { PawlError } from '../../errors.js';
import type { SandboxExit } from '../types.js';

const PR_SET_CHILD_SUBREAPER = 36;
const WNOHANG = 1;
const ECHILD = 10;
const POLL_MS = 1000;

const load = loadLibc;

function setSubreaper(on: boolean): void {
  if (load().prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0) !== 0) {
    throw new PawlError('RuntimeError', `prctl(PR_SET_CHILD_SUBREAPER) failed (errno ${lastErrno()}): pawl cannot learn the exit status of an OCI sandbox`);
  }
}

let holders = 0;
/**
 * Be the reaper of orphaned descendants until the returned release() is called (once per hold;
 * holds nest). Hold it from before `create` is spawned until it has exited.
 */
export function holdSubreaper(): () => void {
  if (holders === 0) setSubreaper(true);
  holders++;
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    if (--holders === 0) setSubreaper(false);
  };
}

/** One non-blocking waitpid: the exit, null while it runs, or 'gone' when it is not our child. */
export function tryReap(pid: number): SandboxExit | null | 'gone' {
  const status = [0];
  const r = load().waitpid(pid, status, WNOHANG);
  if (r === 0) return null;
  if (r < 0) return lastErrno() === ECHILD ? 'gone' : null;
  const s = status[0]!;
  const sig = s & 0x7f;
  if (sig === 0) return { code: (s >> 8) & 0xff, signal: null };
  return { code: null, signal: signalName(sig) };
}

/** Every caller waiting on each pid (one exit status, handed to all). */
const waiting = new Map<number, ((exit: SandboxExit) => void)[]>();
let poller: NodeJS.Timeout | null = null;

function check(): void {
  for (const [pid, resolvers] of waiting) {
    const exit = tryReap(pid);
    if (exit === null) continue;
    waiting.delete(pid);
    // Not our child: someone else reaped it, so the status is lost (never expected here).
    for (const resolve of resolvers) resolve(exit === 'gone' ? { code: null, signal: null } : exit);
  }
  if (waiting.size === 0 && poller) {
    clearInterval(poller);
    poller = null;
    process.off('SIGCHLD', check);
  }
}

/** The exit of `pid`, which must be (or have been reparented as) a child of this process. */
export function waitForExit(pid: number): Promise<SandboxExit> {
  return new Promise((resolve) => {
    waiting.set(pid, [...(waiting.get(pid) ?? []), resolve]);
    if (!poller) {
      process.on('SIGCHLD', check);
      poller = setInterval(check, POLL_MS);
    }
    check();
  });
}
