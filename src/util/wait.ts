// "Wait, or give up after N ms", in its two forms, written once. A wait in progress keeps the
// process alive (its timer is ref'd: a CLI awaiting a poll whose condition no other handle drives
// would otherwise end mid-run with exit 0 and no output), and leaves no timer behind once over.
import { setTimeout as sleep } from 'node:timers/promises';

/** Polls until check() is true or timeoutMs has passed; says which. check runs at least once. */
export async function pollUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 5): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

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
