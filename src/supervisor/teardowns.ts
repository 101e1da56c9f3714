// Teardowns still in progress after their run's result went back (runTask without awaitCleanup):
// the run's group, /workspace mount and scratch dir are removed after the caller has the result,
// as the pool does. What could not be removed is on the leftover list (resources.ts), which gc
// clears; until a teardown settles a ref'd handle keeps the process alive (Sandbox.teardown).

/** What a teardown ended with: its failure (null: everything went), and how long it took. */
export interface Teardown {
  error: string | null;
  ms: number;
}

/** A teardown that could not remove everything: the run's id and what stayed (its cleanup_error). */
export interface TeardownFailure {
  id: string;
  error: string;
}

/** Run id -> its teardown, settled (never rejected) once it has ended and left this map. */
const pending = new Map<string, Promise<void>>();

export function trackTeardown(id: string, teardown: Promise<Teardown>, failed?: (f: TeardownFailure) => void): void {
  const tracked = teardown.then(
    (t) => {
      if (t.error) report(failed, { id, error: t.error });
    },
    (e: unknown) => report(failed, { id, error: (e as Error).message }), // it records its own failure; it does not reject
  ).finally(() => pending.delete(id));
  pending.set(id, tracked);
}

function report(failed: ((f: TeardownFailure) => void) | undefined, f: TeardownFailure): void {
  try {
    failed?.(f);
  } catch {
    /* the caller's own problem */
  }
}

export const teardownsPending = (): number => pending.size;

/**
 * Wait until the teardowns of these runs (by result id), or of every run of this process whose
 * result came before its teardown (runTask's default, ones started meanwhile included), have
 * settled: then nothing of those runs is left but what is on the leftover list. A caller that
 * ends its process with process.exit() calls it first.
 */
export async function teardownsSettled(ids?: Iterable<string>): Promise<void> {
  if (ids) {
    await Promise.all([...ids].map((id) => pending.get(id)));
    return;
  }
  while (pending.size) await Promise.all([...pending.values()]);
}

/** Wait until fewer than `n` teardowns are in progress: each holds a group, a loop mount and a host id. */
export async function teardownsBelow(n: number): Promise<void> {
  while (pending.size >= n) await Promise.race(pending.values());
}
