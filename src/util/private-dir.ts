// A private dir (0700) below a shared one. mkdir -p gives every dir it creates the mode it was
// asked for, so a cache dir made first, recursively, at 0700 also made the state dir 0700: then no
// sandbox's user could reach the rootfs and workspaces below it (a fresh host's first `pawl run`
// failed with bwrap's "Can't find source path ...: Permission denied"). The parent is made first,
// with a mode others can pass through.
import { mkdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

/** `dir` at 0700; its missing parents at `parentMode` (0755: the state dir's). */
export function mkdirPrivateSync(dir: string, parentMode = 0o755): void {
  mkdirSync(dirname(dir), { recursive: true, mode: parentMode });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

export async function mkdirPrivate(dir: string, parentMode = 0o755): Promise<void> {
  await mkdir(dirname(dir), { recursive: true, mode: parentMode });
  await mkdir(dir, { recursive: true, mode: 0o700 });
}
