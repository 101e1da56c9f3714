// Host facts that cost time to find out (a library list from ldd, a compiled seccomp filter, the
// cgroup layout) kept across processes in <stateDir>/cache, each with the key it was computed
// under (hostfacts/keys.ts). A CLI invocation is a new process every time, so an in-memory memo
// alone would redo this work on every command. The dir is trusted (runs refuse a state dir others
// could write: hostfacts/trusted-dir.ts); even so no link is followed, reading or writing.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdirPrivateSync } from '../util/private-dir.js';

const euid = () => process.geteuid?.() ?? 0;

export class FactsCache {
  constructor(readonly dir: string) {}

  private file(name: string): string {
    return join(this.dir, `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
  }

  /** The value stored under `name`, only if it was stored under this exact key. */
  get<T>(name: string, key: string): T | undefined {
    let fd: number;
    try {
      fd = openSync(this.file(name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch {
      return undefined;
    }
    try {
      const st = fstatSync(fd);
      // Only a file this user wrote, which no one else may change.
      if (!st.isFile() || st.uid !== euid() || (st.mode & 0o022) !== 0) return undefined;
      const stored = JSON.parse(readFileSync(fd, 'utf8')) as { key?: unknown; value?: T };
      return stored.key === key ? stored.value : undefined;
    } catch {
      return undefined;
    } finally {
      closeSync(fd);
    }
  }

  /** Best effort: a state dir we cannot write (a read-only root's) only costs the recomputation. */
  set(name: string, key: string, value: unknown): void {
    try {
      mkdirPrivateSync(this.dir);
      const file = this.file(name);
      // A new file (O_EXCL: never through a link that is already there), named unguessably.
      const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}`;
      writeFileSync(tmp, JSON.stringify({ key, value }), { mode: 0o600, flag: 'wx' });
      renameSync(tmp, file); // readers see the old or the new fact, never half of one
    } catch {
      /* not cached */
    }
  }

  async remember<T>(name: string, key: string, compute: () => Promise<T>): Promise<T> {
    const hit = this.get<T>(name, key);
    if (hit !== undefined) return hit;
    const value = await compute();
    this.set(name, key, value);
    return value;
  }
}

export const factsCache = (stateDir: string) => new FactsCache(join(stateDir, 'cache'));
