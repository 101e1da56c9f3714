// Human sizes and durations ("128MB", "30s") as zod types, so every limit in a policy, a flag
// or security.yaml is parsed and validated in exactly one place.
import { z } from 'zod';

// Binary multiples, as Ratchet's "128MB" and cgroup tools mean them (128MB = 134217728 bytes).
const SIZE_UNITS: Record<string, number> = {
  b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4,
};
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 };

export function parseSize(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`invalid size ${value}: expected a whole number of bytes >= 0`);
    return value;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? (m[2] || 'b').toLowerCase() : '';
  if (!m || !(unit in SIZE_UNITS)) {
    throw new Error(`invalid size "${value}": expected a number with a unit B, KB, MB, GB or TB (e.g. "128MB")`);
  }
  const bytes = Math.round(Number(m[1]) * SIZE_UNITS[unit]!);
  // Past 2^53 a number is no longer exact: the kernel got 1.0995116266764884e+21, or a wrapped value.
  if (!Number.isSafeInteger(bytes)) throw new Error(`invalid size "${value}": at most ${Number.MAX_SAFE_INTEGER} bytes (8 PB)`);
  return bytes;
}

/**
 * The longest wait node's timers take (2^31 - 1 ms, ~24.8 days): a longer one fires at once (a
 * 600h timeout ended every run as Timeout at its start; a 600h cleanup interval made gc spin).
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;
const tooLong = (value: string | number) => new Error(`invalid duration ${typeof value === 'number' ? value : `"${value}"`}: at most ${MAX_DURATION_MS} ms (~24 days), the longest a timer can wait`);

/** `max`: MAX_DURATION_MS for what a timer waits for; Infinity for an age (gc --older-than). */
export function parseDuration(value: string | number, max = MAX_DURATION_MS): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error(`invalid duration ${value}: expected milliseconds >= 0`);
    if (Math.round(value) > max) throw tooLong(value);
    return Math.round(value);
  }
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? (m[2] || 'ms').toLowerCase() : '';
  if (!m || !(unit in DURATION_UNITS)) {
    throw new Error(`invalid duration "${value}": expected a number with a unit ms, s, m or h (e.g. "30s")`);
  }
  const ms = Number(m[1]) * DURATION_UNITS[unit]!;
  if (ms < 0) throw new Error(`invalid duration "${value}": must not be negative`);
  if (Math.round(ms) > max) throw tooLong(value);
  return Math.round(ms);
}

function wrap<T>(parse: (v: string | number) => T) {
  return (v: string | number, ctx: z.RefinementCtx): T | typeof z.NEVER => {
    try {
      return parse(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  };
}

/** A byte count: accepts 134217728 or "128MB". Output is bytes. */
export const Size = z.union([z.number(), z.string()]).transform(wrap(parseSize));
/** A duration: accepts 30000 (ms) or "30s". Output is milliseconds. */
export const Duration = z.union([z.number(), z.string()]).transform(wrap(parseDuration));

export function formatSize(bytes: number): string {
  for (const [unit, mult] of [['GB', 1024 ** 3], ['MB', 1024 ** 2], ['KB', 1024]] as const) {
    if (bytes >= mult && bytes % mult === 0) return `${bytes / mult}${unit}`;
  }
  return `${bytes}B`;
}
