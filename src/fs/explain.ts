// `pawl explain`'s filesystem part beyond the mount table (which is the plan's layout): how each
// blocked path is kept out, and Landlock's rules. The same pure functions the run uses.
import type { Policy } from '../config/policy.js';
import { explainLandlock } from '../lsm/landlock/rules.js';
import { landlockAbi } from '../lsm/landlock/probe.js';
import { blockedPlan } from './mounts.js';
import { volumeData, volumeDir } from './volumes.js';

export interface FsExplanation {
  blocked: string[];
  landlock: string[];
}

export function explainFs(policy: Policy, rootfs: string): FsExplanation {
  return { blocked: blockedPlan(policy, rootfs).lines, landlock: explainLandlock(policy, landlockAbi()) };
}

/** A volume's host side, for the mount table: where its data lives and its cap. */
export function describeVolume(stateDir: string, name: string, size: number): string {
  return `volume "${name}": ${volumeData(stateDir, name) ?? `${volumeDir(stateDir, name)}/data-RANDOM`}, ext4 of ${size} bytes (the cap), kept across runs`;
}
