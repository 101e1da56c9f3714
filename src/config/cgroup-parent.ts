// pawl's own cgroup subtree (HostConfig.cgroupParent): its one acceptance rule, and its default for
// a supervisor without root on a pure v2 host. Running there, pawl works inside a subtree delegated
// to its user (what systemd's Delegate=yes gives a service); the kernel's rules that shape the
// default are in cgroup/v2/delegation.ts. Here, in the config layer, because the host config's
// default depends on it and config sits below cgroup/.
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { z } from 'zod';

// pawl must never create, move or delete cgroups it does not own (the host's own services live
// in cgroups next to it), so the subtree's last component has to be recognisably pawl's.
const PARENT = /^(?:[\w.@-]+\/)*pawl[\w.-]*$/;

/** The one rule for a cgroup parent: HostConfig and both drivers check it the same way. */
export const CgroupParent = z
  .string()
  .refine((p) => PARENT.test(p) && !p.split('/').some((c) => c === '.' || c === '..'), {
    message: 'expected a relative cgroup path whose last component starts with "pawl" (e.g. "pawl" or "system.slice/pawl-ci")',
  });

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
