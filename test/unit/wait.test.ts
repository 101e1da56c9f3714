// The one "wait, or give up after N ms" helper: it gives up when it must, and not before.
import { describe, expect, it } from 'vitest';
import { pollUntil, withDeadline } from '../../src/util/wait.js';

describe('pollUntil', () => {
  it('is true as soon as the check is, false when the time is up', async () => {
    let n = 0;
    expect(await pollUntil(() => ++n === 3, 5000, 1)).toBe(true);
    expect(n).toBe(3);
    expect(await pollUntil(() => false, 20, 1)).toBe(false);
  });

  it('passes a failing check on', async () => {
    await expect(pollUntil(async () => { throw new Error('EIO'); }, 100)).rejects.toThrow('EIO');
  });
});

describe('withDeadline', () => {
  it('gives the value when it comes in time, undefined when it does not', async () => {
    expect(await withDeadline(Promise.resolve(7), 1000)).toBe(7);
    expect(await withDeadline(new Promise(() => {}), 10)).toBeUndefined();
    await expect(withDeadline(Promise.reject(new Error('gone')), 1000)).rejects.toThrow('gone');
  });
});
