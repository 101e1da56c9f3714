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
// ownCgroupPath / delegatedParent (the default parent) live in config/cgroup-parent.ts.

/** The deepest common ancestor of two cgroup paths relative to the mount ("a/b", "a/c" -> "a"; "" is the root). */
export function commonAncestor(a: string, b: string): string {
  const pa = a.split('/').filter(Boolean);
  const pb = b.split('/').filter(Boolean);
  const out: string[] = [];
  for (let i = 0; i < Math.min(pa.length, pb.length) && pa[i] === pb[i]; i++) out.push(pa[i]!);
  return out.join('/');
}
