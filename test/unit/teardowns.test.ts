// The bookkeeping of teardowns that come after their results (runTask's default): who waits for
// what. The teardowns themselves are real elsewhere (foundation, hardening); here they are
// promises settled by hand, so that each wait's order is certain.
import { afterEach, describe, expect, it } from 'vitest';
import { teardownsBelow, teardownsPending, teardownsSettled, trackTeardown, type Teardown } from '../../src/supervisor/teardowns.js';

const made: (() => void)[] = [];
function teardown(): { promise: Promise<Teardown>; end: (error?: string) => void } {
  let end!: (t: Teardown) => void;
  const promise = new Promise<Teardown>((r) => (end = r));
  made.push(() => end({ error: null, ms: 1 }));
  return { promise, end: (error) => end({ error: error ?? null, ms: 1 }) };
}

// A failed test leaves none in progress for the next one to wait on.
afterEach(async () => {
  for (const end of made.splice(0)) end();
  await teardownsSettled();
});

const settledWithin = async (p: Promise<unknown>, ms = 20) => Promise.race([p.then(() => true), new Promise((r) => setTimeout(() => r(false), ms))]);

describe('teardowns after their results', () => {
  it('a run waits while as many teardowns as allowed are in progress, and goes on when one ends', async () => {
    const a = teardown();
    const b = teardown();
    trackTeardown('a', a.promise);
    trackTeardown('b', b.promise);
    expect(teardownsPending()).toBe(2);
    const below = teardownsBelow(2);
    expect(await settledWithin(below)).toBe(false);
    a.end();
    expect(await settledWithin(below)).toBe(true);
    b.end();
    await teardownsSettled();
    expect(teardownsPending()).toBe(0);
  });

  it("waits for the named runs' teardowns only (pawl test's cases), not for others still going", async () => {
    const mine = teardown();
    const other = teardown();
    trackTeardown('mine', mine.promise);
    trackTeardown('other', other.promise);
    const waited = teardownsSettled(['mine', 'not-tracked']);
    expect(await settledWithin(waited)).toBe(false);
    mine.end();
    expect(await settledWithin(waited)).toBe(true);
    expect(await settledWithin(teardownsSettled())).toBe(false); // all of them: 'other' still goes on
    other.end();
    await teardownsSettled();
  });

  it('tells the caller of each teardown that could not remove everything, once, and of no other', async () => {
    const failures: { id: string; error: string }[] = [];
    const bad = teardown();
    const good = teardown();
    trackTeardown('bad', bad.promise, (f) => failures.push(f));
    trackTeardown('good', good.promise, (f) => failures.push(f));
    bad.end('cannot remove cgroup run-bad: EBUSY');
    good.end();
    await teardownsSettled();
    expect(failures).toEqual([{ id: 'bad', error: 'cannot remove cgroup run-bad: EBUSY' }]);
  });
});
