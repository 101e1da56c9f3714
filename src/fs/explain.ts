// `pawl explain`'s filesystem part: the policy's mounts, how each blocked path is kept out, what
// the layout masks, and Landlock's rules. The same pure functions the run uses.
import type { Policy } from '../config/policy.js';
import { MASKED_PATHS, READONLY_PATHS } from '../runtime/oci/config.js';
import { explainLandlock } from '../lsm/landlock/rules.js';
import { landlockAbi } from '../lsm/landlock/probe.js';
import { blockedPlan, policyMounts } from './mounts.js';
import { volumeData, volumeDir } from './volumes.js';

export interface FsExplanation {
  /** Rows for the mount table. */
  mounts: { dst: string; src: string; mode: string }[];
  /** /proc entries masked (empty) and read-only, as runc, crun and bwrap alike mount them. */
  masked: string[];
  blocked: string[];
  landlock: string[];
}

export function explainFs(policy: Policy, rootfs: string, stateDir: string): FsExplanation {
  const mounts = policyMounts(policy).map((m) => {
    if (m.kind === 'bind') return { dst: m.target, src: `${m.source} (opened without following symlinks, bound by fd)`, mode: m.readonly ? 'ro' : 'rw' };
    if (m.kind === 'volume') return { dst: m.target, src: `volume "${m.volume}": ${volumeData(stateDir, m.volume) ?? `${volumeDir(stateDir, m.volume)}/data-RANDOM`}, ext4 of ${m.size} bytes (the cap), kept across runs`, mode: m.readonly ? 'ro' : 'rw' };
    return { dst: m.target, src: `tmpfs size=${m.size} mode=1777 (counts as memory)`, mode: 'rw' };
  });
  return {
    mounts,
    masked: [...MASKED_PATHS.map((p) => `${p} (masked)`), ...READONLY_PATHS.map((p) => `${p} (read-only)`)],
    blocked: blockedPlan(policy, rootfs).lines,
    landlock: explainLandlock(policy, landlockAbi()),
  };
}
