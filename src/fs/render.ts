// The policy's mounts and blocked-path covers rendered for each backend: bwrap arguments and OCI
// mounts. Pure given the rootfs tree (blocked covers depend on what it holds); placed after the
// layout's own mounts (/tmp, /workspace) and before / turns read-only.
import type { Policy } from '../config/policy.js';
import { BLOCKED_FILE } from '../lsm/landlock/helper.js';
import { blockedPlan, MOUNT_FD_BASE, policyMounts, type FsMount } from './mounts.js';

export const fsMounts = (policy: Policy, rootfs: string): FsMount[] => [...policyMounts(policy), ...blockedPlan(policy, rootfs).covers];

/** bwrap: bind sources come as inherited fds MOUNT_FD_BASE + slot (bwrap closes each after binding it). */
export function bwrapFsArgs(policy: Policy, rootfs: string): string[] {
  return fsMounts(policy, rootfs).flatMap((m): string[] => {
    switch (m.kind) {
      case 'bind':
      case 'volume':
        return [m.readonly ? '--ro-bind-fd' : '--bind-fd', String(MOUNT_FD_BASE + m.slot), m.target];
      case 'tmpfs':
        return ['--perms', '1777', '--size', String(m.size), '--tmpfs', m.target];
      case 'blocked-dir':
        return ['--perms', '0000', '--size', '4096', '--tmpfs', m.target, '--remount-ro', m.target];
      case 'blocked-file':
        return ['--ro-bind', `${rootfs}${BLOCKED_FILE}`, m.target];
    }
  });
}

export interface OciMountEntry {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/**
 * runc/crun: a source mount's source is the path the runtime (root on the host) reaches the
 * supervisor's open fd by (`sources[slot]`, fs/mounts.ts ociSourcePaths); explain shows a placeholder.
 */
export function ociFsMounts(policy: Policy, rootfs: string, sources: string[] | null | undefined): OciMountEntry[] {
  const bind = (readOnly: boolean) => ['rbind', readOnly ? 'ro' : 'rw', 'nosuid', 'nodev'];
  return fsMounts(policy, rootfs).map((m): OciMountEntry => {
    switch (m.kind) {
      case 'bind':
      case 'volume':
        return { destination: m.target, type: 'bind', source: sources?.[m.slot] ?? `/proc/SUPERVISOR/fd/FD-OF(${m.kind === 'bind' ? m.source : `volume ${m.volume}`})`, options: bind(m.readonly) };
      case 'tmpfs':
        return { destination: m.target, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', `size=${m.size}`] };
      case 'blocked-dir':
        return { destination: m.target, type: 'tmpfs', source: 'tmpfs', options: ['ro', 'nosuid', 'nodev', 'noexec', 'mode=000', 'size=4096'] };
      case 'blocked-file':
        return { destination: m.target, type: 'bind', source: `${rootfs}${BLOCKED_FILE}`, options: bind(true) };
    }
  });
}
