// The warm pool's settings: zod is the only source of their defaults and type.
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { MAX_DURATION_MS } from '../config/units.js';

export const PoolConfig = z.strictObject({
  /** Idle sandboxes kept started per policy key (a key is warmed by warm() or by a run using it). */
  size: z.number().int().min(0).max(256).default(2),
  /** An idle sandbox unused this long is destroyed; its key is not refilled until asked for again. */
  idleMs: z.number().int().min(100).max(MAX_DURATION_MS).default(60_000),
  /**
   * Every sandbox the pool holds at once, idle, starting or running (the plan's
   * max_concurrent_containers). Tasks beyond it wait in a queue; idle sandboxes of other keys are
   * destroyed to make room for a waiting task.
   */
  maxConcurrent: z.number().int().min(1).default(() => Math.max(2, availableParallelism() * 2)),
  /** Tasks that may wait for a slot; one more is refused (PawlError RuntimeError). */
  maxQueue: z.number().int().min(0).default(10_000),
  /** After a sandbox fails to start, its key is not refilled for this long (no hot retry loop). */
  retryMs: z.number().int().min(0).default(1_000),
  /**
   * Reuse mode (off unless given; README "Reuse mode"): several runs of the same task and policy
   * in one sandbox, each in a fresh JavaScript context, at most maxRuns, then a fresh sandbox.
   * Only for the trusted and system trust levels: other runs are refused.
   */
  reuse: z.strictObject({ maxRuns: z.number().int().min(1).max(10_000).default(50) }).optional(),
});
export type PoolConfig = z.infer<typeof PoolConfig>;
export type PoolConfigInput = z.input<typeof PoolConfig>;
