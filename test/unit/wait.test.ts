// The one "wait, or give up after N ms" helper: it gives up when it must, and not before.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
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

describe('a wait in progress keeps the process alive', () => {
  // A CLI awaiting a poll (or a deadline) that no other handle drives must not end mid-run with
  // exit 0 and nothing printed: node exits when only unref'd timers are left. (The built module: node 20 runs no .ts.)
  const alone = (code: string) => spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 10_000 });
  const wait = JSON.stringify(pathToFileURL(join(import.meta.dirname, '..', '..', 'dist', 'util', 'wait.js')).href);

  it('pollUntil, and withDeadline on a promise nothing settles', () => {
    const poll = alone(`const { pollUntil } = await import(${wait}); const t = Date.now(); console.log(await pollUntil(() => Date.now() - t > 200, 5000, 20));`);
    expect(poll.stdout.trim()).toBe('true');
    const deadline = alone(`const { withDeadline } = await import(${wait}); console.log(String(await withDeadline(new Promise(() => {}), 200)));`);
    expect(deadline.stdout.trim()).toBe('undefined');
  });
});
