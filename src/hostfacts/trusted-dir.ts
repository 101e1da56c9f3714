// pawl trusts what it keeps in its state dir: the rootfs every sandbox runs, compiled seccomp
// filters, the library lists whose files are copied into the rootfs, the workspace image root
// mounts. Someone else who can write there (or swap a dir on the way to it) chooses all of
// those: a planted filter that allowed every call was used as is. So before a run, the state
// dir, the dirs pawl keeps in it and the run dir, and every dir and link on the way to each, must
// be this user's or root's, and writable by no one else (a world-writable dir on the way, /tmp,
// only with its sticky bit and the next step ours), as OpenSSH checks the path to a key.
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { PawlError } from '../errors.js';
import { mkdirOpenSync, mkdirPrivateSync } from '../util/private-dir.js';

const STICKY = 0o1000;
const trusted = new Set<string>();

/**
 * Refuses (HostUnsupported) a state dir or run dir that someone other than this user or root could
 * change. `make` (a run): the dirs are made first where missing, with the modes pawl gives them,
 * so that what is checked is what is used (a dir someone else made meanwhile is theirs: refused);
 * without (doctor), a missing dir is not checked. Remembered per process once checked whole.
 */
export function assertTrustedStateDir(stateDir: string, runDir: string, opts: { make?: boolean } = {}): void {
  const memo = `${stateDir}\0${runDir}`;
  if (trusted.has(memo)) return;
  const dirs = [[stateDir, 'state dir'], [join(stateDir, 'rootfs'), 'rootfs dir'], [join(stateDir, 'cache'), 'cache dir'], [runDir, 'run dir']] as const;
  for (const [dir, what] of dirs) if (!isAbsolute(dir)) throw new PawlError('HostUnsupported', `the ${what} ${dir} is not an absolute path (PAWL_STATE_DIR and the run dir must be)`);
  // What is there is judged before pawl makes anything in it; what pawl then makes, after (mkdir -p
  // takes a dir that is already there, whoever made it meanwhile).
  let complete = checkAll(dirs);
  if (!complete && opts.make !== false) {
    mkdirOpenSync(stateDir);
    mkdirOpenSync(join(stateDir, 'rootfs'));
    mkdirPrivateSync(join(stateDir, 'cache'));
    mkdirOpenSync(runDir, 0o711);
    complete = checkAll(dirs);
  }
  if (complete) trusted.add(memo);
}

/** Whether every dir was there; refuses one (or a step to it) that is not pawl's alone. */
function checkAll(dirs: readonly (readonly [string, string])[]): boolean {
  let complete = true;
  for (const [dir, what] of dirs) {
    const last = checkPath(dir, what);
    if (last === null) complete = false;
    else if (last.open) refuse(what, dir, 'is writable by others');
  }
  return complete;
}

const euid = () => process.geteuid?.() ?? 0;
const ours = (st: Stats) => st.uid === 0 || st.uid === euid();
const MAX_LINKS = 40; // the kernel's own bound on links in one lookup

function refuse(what: string, path: string, why: string): never {
  throw new PawlError('HostUnsupported', `the ${what} is not pawl's alone: ${path} ${why}; pawl trusts the rootfs and the facts it caches there (make it owned by uid ${euid()} or root and not writable by others, or choose another PAWL_STATE_DIR)`);
}

/**
 * Each step from / to `path`, walked as the kernel looks it up: a link's target takes the link's
 * place (each link checked too), ".." goes up from where the walk is. Returns whether the last dir
 * is writable by others (sticky: a step may pass through it, it may not be the dir itself), or null
 * when a step does not exist.
 */
function checkPath(path: string, what: string): { open: boolean } | null {
  const todo = path.split('/').filter(Boolean);
  let at = '/';
  let open = false;
  let links = 0;
  while (todo.length) {
    const name = todo.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      at = join(at, '..'); // a dir already walked through: checked
      open = ((lstatSync(at).mode & 0o022) !== 0);
      continue;
    }
    const next = join(at, name);
    let st: Stats;
    try {
      st = lstatSync(next);
    } catch {
      return null; // not there
    }
    if (!ours(st)) refuse(what, path, `has ${next} owned by uid ${st.uid}`);
    if (st.isSymbolicLink()) {
      // The link is ours, in a dir only we (or a sticky one's owner) may change: its target is walked in its place.
      if (++links > MAX_LINKS) refuse(what, path, 'is reached through too many links');
      const target = readlinkSync(next);
      if (target.startsWith('/')) (at = '/'), (open = false);
      todo.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    if (!st.isDirectory()) refuse(what, path, `has ${next}, which is not a directory`);
    open = (st.mode & 0o022) !== 0;
    if (open && !(st.mode & STICKY)) refuse(what, path, `has ${next} writable by others (mode ${(st.mode & 0o7777).toString(8)})`);
    at = next;
  }
  return { open };
}
