// The VM's initramfs writer (scripts/vm/cpio.mjs): an archive the kernel's newc reader (here
// busybox cpio, the same format) unpacks into the same tree, device node included.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error: a plain .mjs script without types
import { S_IFCHR, S_IFDIR, S_IFREG, cpio } from '../../scripts/vm/cpio.mjs';

describe('initramfs cpio', () => {
  it('busybox cpio unpacks directories, files (odd sizes: padding) and /dev/console', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-cpio-'));
    try {
      const archive: Buffer = cpio([
        { name: 'bin', mode: S_IFDIR | 0o755 },
        { name: 'dev', mode: S_IFDIR | 0o755 },
        { name: 'bin/a', mode: S_IFREG | 0o755, data: Buffer.from('abc') },
        { name: 'bin/bb', mode: S_IFREG | 0o644, data: Buffer.from('hello, world') },
        { name: 'dev/console', mode: S_IFCHR | 0o600, rdev: [5, 1] },
      ]);
      expect(archive.length % 4).toBe(0);
      writeFileSync(join(dir, 'x.cpio'), archive);
      execFileSync('sh', ['-c', 'cd "$1" && mkdir out && cd out && busybox cpio -id < ../x.cpio', 'sh', dir], { stdio: 'pipe' });
      expect(readFileSync(join(dir, 'out/bin/a'), 'utf8')).toBe('abc');
      expect(readFileSync(join(dir, 'out/bin/bb'), 'utf8')).toBe('hello, world');
      expect(statSync(join(dir, 'out/bin/a')).mode & 0o777).toBe(0o755);
      const con = statSync(join(dir, 'out/dev/console'));
      expect(con.isCharacterDevice()).toBe(true);
      expect([Math.floor(con.rdev / 256), con.rdev % 256]).toEqual([5, 1]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
