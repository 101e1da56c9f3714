// The one degrade step. A protection the policy asks for and this host cannot apply is refused
// (fail closed) unless the policy allows running without it; then the gap is named in the run
// result's `degraded`, and the plan renders the run without it: both cgroup drivers and every
// runtime read the same limits (for swap, CgroupLimits.noSwap), so none can disagree.
import type { PawlError } from '../errors.js';

export interface HostGap {
  /** The `degraded` entry's prefix: "swap-limit", "io-limits", "workspace-fs". */
  name: string;
  /** What is missing on this host, and what the run goes without. */
  detail: string;
  /** The policy allows this gap (policy.allowDegraded, or storage.require* left off). */
  allowed: boolean;
  /** The refusal when it does not (hostfacts/capabilities.ts). */
  refusal: () => PawlError;
}

/** Refuses a gap the policy does not allow; notes one it does in `degraded`. Null gap: nothing to do. */
export function degrade(degraded: string[], gap: HostGap | null): void {
  if (!gap) return;
  if (!gap.allowed) throw gap.refusal();
  degraded.push(`${gap.name}: ${gap.detail}`);
}
