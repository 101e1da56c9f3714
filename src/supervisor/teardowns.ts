// Teardowns still in progress after their run's result went back (runTask without awaitCleanup):
// the run's group, /workspace mount and scratch dir are removed after the caller has the result,
// as the pool does. What could not be removed is on the leftover list (resources.ts), which gc
// clears; until a teardown settles a ref'd handle keeps the process alive (Sandbox.teardown).
import type { Teardown } from './sandbox.js';

const pending = new Set<Promise<unknown>>();

export function trackTeardown(teardown: Promise<Teardown>): void {
  const tracked = teardown.catch(() => {}); // it records its own failure; it never rejects
  pending.add(tracked);
  void tracked.finally(() => pending.delete(tracked));
}

/**
 * Wait until the teardown of every run of this process whose result came before it (runTask's
 * default) has settled, ones started meanwhile included: then nothing of those runs is left but
 * what is on the leftover list. A caller that ends its process with process.exit() calls it first.
 */
export async function teardownsSettled(): Promise<void> {
  while (pending.size) await Promise.all([...pending]);
}
