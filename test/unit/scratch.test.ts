// Host-side handling of what a sandbox wrote: links are never followed.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { removeTree, treeUsage } from '../../src/supervisor/scratch.js';

describe('removeTree', () => {
  it('removes links, never what they point at', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pawl-scratch-'));
    const outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'precious'), 'keep me');
    const run = join(root, 'runs', 'r1');
    mkdirSync(join(run, 'workspace', 'deep'), { recursive: true });
    symlinkSync(outside, join(run, 'workspace', 'dirlink'));
    symlinkSync(join(outside, 'precious'), join(run, 'workspace', 'deep', 'filelink'));
    writeFileSync(join(run, 'workspace', 'f'), 'x');
    chmodSync(join(run, 'workspace', 'deep'), 0o000); // a sandbox can lock its own dirs
    await removeTree(run, join(root, 'runs'));
    expect(existsSync(run)).toBe(false);
    expect(existsSync(join(outside, 'precious'))).toBe(true);
  });

  it('a directory swapped for a link to an outside dir after it was listed is never followed (10.8)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pawl-scratch-'));
    const canary = join(root, 'canary');
    mkdirSync(canary);
    writeFileSync(join(canary, 'precious'), 'keep me');
    const run = join(root, 'runs', 'r1');
    mkdirSync(join(run, 'workspace', 'a', 'sub'), { recursive: true });
    writeFileSync(join(run, 'workspace', 'a', 'sub', 'f'), 'x');
    let swapped = false;
    // Right after workspace/a is listed (it saw "sub", a directory), sub becomes a link to the canary.
    await removeTree(run, join(root, 'runs'), (_fd, names) => {
      if (swapped || !names.includes('sub')) return;
      renameSync(join(run, 'workspace', 'a', 'sub'), join(run, 'moved'));
      symlinkSync(canary, join(run, 'workspace', 'a', 'sub'));
      swapped = true;
    });
    expect(swapped).toBe(true);
    expect(existsSync(run)).toBe(false);
    expect(readdirSync(canary)).toEqual(['precious']);
  });

  it('lets the event loop run while it removes a big tree (pawl serve keeps answering)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pawl-scratch-'));
    const run = join(root, 'runs', 'r1');
    mkdirSync(join(run, 'workspace', 'many'), { recursive: true });
    for (let i = 0; i < 3000; i++) writeFileSync(join(run, 'workspace', 'many', String(i)), '');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    try {
      await removeTree(run, join(root, 'runs'));
    } finally {
      clearInterval(timer);
    }
    expect(existsSync(run)).toBe(false);
    // A removal done in one synchronous go lets no timer run before it resolves.
    expect(ticks).toBeGreaterThan(1);
  });

  it('refuses to remove anything outside the run dir', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pawl-scratch-'));
    await expect(removeTree('/etc', root)).rejects.toThrow(/not inside/);
    await expect(removeTree(join(root, '..', 'x'), root)).rejects.toThrow(/not inside/);
  });

  it('counts allocated bytes without following links', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pawl-scratch-'));
    writeFileSync(join(root, 'a'), Buffer.alloc(64 * 1024, 1));
    symlinkSync('/usr', join(root, 'usr'));
    for (const live of [true, false]) {
      const used = await treeUsage(root, { live });
      expect(used).toBeGreaterThanOrEqual(64 * 1024);
      expect(used).toBeLessThan(1024 * 1024);
    }
  });

  it('does not walk through a directory that is a link (one swapped in after the listing included)', async () => {
    // Every directory is opened O_NOFOLLOW: a link to /usr measures as a link, not as /usr.
    const root = mkdtempSync(join(tmpdir(), 'pawl-scratch-'));
    symlinkSync('/usr', join(root, 'swapped'));
    expect(await treeUsage(join(root, 'swapped'), { live: false })).toBeLessThan(1024 * 1024);
  });
});
