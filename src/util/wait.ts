// "Wait, or give up after N ms", in its two forms, written once. A wait in progress keeps the
// process alive (its timer is ref'd: a CLI awaiting a poll whose condition no other handle drives
// would otherwise end mid-run with exit 0 and no output), and leaves no timer behind once over.
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls until check() is true or timeoutMs has passed; says which. check runs at least once.
 * intervalMs may depend on the attempt (0, 1, ...): poll often while the answer is due, less after.
 */
export async function pollUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs: number | ((attempt: number) => number) = 5): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(typeof intervalMs === 'number' ? intervalMs : intervalMs(attempt));
  }
}

/** 1 ms apart for the first 20 polls, then 5 ms: for what the kernel finishes in a few ms (a group emptied by SIGKILL, a freeze). */
export const soonThenEvery5ms = (attempt: number): number => (attempt < 20 ? 1 : 5);

/** What `p` settles to, or `undefined` once timeoutMs has passed first. A rejection is passed on. */
export async function withDeadline<T>(p: Promise<T>, timeoutMs: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, timeoutMs, undefined);
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}
