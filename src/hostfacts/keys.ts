// What a cached host fact depends on, read cheaply on every use. A fact is trusted only when
// every part of its key is equal to what it was when the fact was computed: nothing is kept on a
// timer, so a cache cannot go stale silently.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

/** Changes on every boot: facts about the running kernel (mounts, page cache) end with it. */
export function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

/** Inode, size, mtime and ctime: any replacement or rewrite of the file changes one of them. */
export function statSig(path: string): string {
  try {
    const s = statSync(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch {
    return 'missing';
  }
}

export function sha256(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}
