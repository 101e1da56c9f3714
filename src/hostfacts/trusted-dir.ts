// pawl trusts what it keeps in its state dir: the rootfs every sandbox runs, compiled seccomp
// filters, the library lists whose files are copied into the rootfs, the workspace image root
// mounts. Someone else who can write there (or swap a dir on the way to it) chooses all of
// those: a planted filter that allowed every call was used as is. So before a run, the state
// dir, the dirs pawl keeps in it and the run dir, and every dir and link on the way to each, must
// be this user's or root's, and writable by no one else (a world-writable dir on the way, /tmp,
// only with its sticky bit and the next step ours), as OpenSSH checks the path to a key.
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { PawlError } from '../errors.js';

const STICKY = 0o1000;
const trusted = new Set<string>();

/**
 * Refuses (HostUnsupported) a state dir or run dir that someone other than this user or root could
 * change. Remembered per process once every dir exists; until then (a first run makes them) it is
 * checked again each time: prepare calls it before and after making them.
 */
export function assertTrustedStateDir(stateDir: string, runDir: string): void {
  const memo = `${stateDir}\0${runDir}`;
  if (trusted.has(memo)) return;
  let complete = true;
  for (const [dir, what] of [[stateDir, 'state dir'], [join(stateDir, 'cache'), 'cache dir'], [join(stateDir, 'rootfs'), 'rootfs dir'], [runDir, 'run dir']] as const) {
    if (!isAbsolute(dir)) throw new PawlError('HostUnsupported', `the ${what} ${dir} is not an absolute path (PAWL_STATE_DIR and the run dir must be)`);
    const last = checkPath(dir, what, 0);
    if (last === null) complete = false;
    else if (last.open) refuse(what, dir, 'is writable by others');
  }
  if (complete) trusted.add(memo);
}

const euid = () => process.geteuid?.() ?? 0;
const ours = (st: Stats) => st.uid === 0 || st.uid === euid();

function refuse(what: string, path: string, why: string): never {
  throw new PawlError('HostUnsupported', `the ${what} is not pawl's alone: ${path} ${why}; pawl trusts the rootfs and the facts it caches there (make it owned by uid ${euid()} or root and not writable by others, or choose another PAWL_STATE_DIR)`);
}

/**
 * Each step from / to `path`, links followed (each link checked, and the path it names as a path
 * of its own). Returns whether the last dir is writable by others (sticky: a step may pass through
 * it, but it may not be the dir itself), or null when a step does not exist yet.
 */
function checkPath(path: string, what: string, depth: number): { open: boolean } | null {
  if (depth > 16) refuse(what, path, 'is reached through too many links');
  let open = false;
  let at = '/';
  for (const name of path.split('/').filter(Boolean)) {
    const next = join(at, name);
    let st: Stats;
    try {
      st = lstatSync(next);
    } catch {
      return null; // not made yet
    }
    if (!ours(st)) refuse(what, path, `has ${next} owned by uid ${st.uid}`);
    if (st.isSymbolicLink()) {
      // The link is ours, in a dir only we (or a sticky one's owner) may change: where it leads is checked as a path of its own.
      const target = readlinkSync(next);
      if (target.split('/').includes('..')) refuse(what, path, `has ${next}, a link whose target climbs with ".." (not followed)`);
      at = resolve(dirname(next), target);
      const there = checkPath(at, what, depth + 1);
      if (there === null) return null;
      open = there.open;
      continue;
    }
    if (!st.isDirectory()) refuse(what, path, `has ${next}, which is not a directory`);
    open = (st.mode & 0o022) !== 0;
    if (open && !(st.mode & STICKY)) refuse(what, path, `has ${next} writable by others (mode ${(st.mode & 0o7777).toString(8)})`);
    at = next;
  }
  return { open };
}
