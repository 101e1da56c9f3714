// Running without root on cgroup v2: pawl works inside a subtree delegated to its user (what
// systemd's Delegate=yes gives a service: the directory and its cgroup.procs, cgroup.threads and
// cgroup.subtree_control are chowned to the user). The kernel's rules that matter
// (Documentation/admin-guide/cgroup-v2.rst "Delegation Containment", "No Internal Process"):
// - creating run groups needs write access to their parent directory;
// - moving a process needs write access to the cgroup.procs of the destination AND of the common
//   ancestor of its source and destination, so the supervisor must itself live inside the
//   delegated subtree;
// - a cgroup that holds processes cannot hand controllers to children, so the supervisor lives
//   in a leaf (e.g. <delegated>/supervisor) beside pawl's subtree (<delegated>/pawl).
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';

/**
 * This process's cgroup v2 path ("/a/b") from the text of /proc/self/cgroup, or null unless the
 * unified hierarchy is the only one (a hybrid host also lists its v1 hierarchies there).
 */
export function ownCgroupPath(procSelfCgroup: string): string | null {
  const lines = procSelfCgroup.split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== 1 || !lines[0]!.startsWith('0::/')) return null;
  return lines[0]!.slice(3).trim();
}

/**
 * The default subtree for a non-root supervisor: a "pawl" group beside the supervisor's own leaf
 * cgroup, i.e. <own cgroup>/../pawl, relative to the cgroup2 mount ("/svc/supervisor" ->
 * "svc/pawl"). Null when the supervisor sits directly below the root (nothing there can be
 * delegated to it).
 */
export function delegatedParent(ownPath: string): string | null {
  const dir = posix.dirname(ownPath);
  if (dir === '/' || dir === '.') return null;
  return `${dir.slice(1)}/pawl`;
}

/** delegatedParent() for this process on a pure v2 host, or null (hybrid/v1, or no such parent). */
export function ownDelegatedParent(): string | null {
  let text: string;
  try {
    text = readFileSync('/proc/self/cgroup', 'utf8');
  } catch {
    return null;
  }
  const own = ownCgroupPath(text);
  return own === null ? null : delegatedParent(own);
}

/** The deepest common ancestor of two cgroup paths relative to the mount ("a/b", "a/c" -> "a"; "" is the root). */
export function commonAncestor(a: string, b: string): string {
  const pa = a.split('/').filter(Boolean);
  const pb = b.split('/').filter(Boolean);
  const out: string[] = [];
  for (let i = 0; i < Math.min(pa.length, pb.length) && pa[i] === pb[i]; i++) out.push(pa[i]!);
  return out.join('/');
}
