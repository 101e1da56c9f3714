// Dirs pawl makes for itself, with the modes they need whatever the umask. mkdir -p gives every
// dir it creates the mode it was asked for (less the umask): a private cache dir made first, at
// 0700, once made the state dir 0700 too, and then no sandbox's user could reach the rootfs and
// workspaces below it (a fresh host's first `pawl run` failed with bwrap's "Can't find source
// path ...: Permission denied"). A root umask of 027 or 077 would do the same to 0755.
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** `dir` and its missing parents, each made with exactly `mode` (chmod after mkdir: the umask). */
export function mkdirOpenSync(dir: string, mode = 0o755): void {
  const first = mkdirSync(dir, { recursive: true, mode });
  if (first === undefined) return; // it was there: its mode is the operator's
  for (let d = dir; ; d = dirname(d)) {
    chmodSync(d, mode);
    if (d === first || dirname(d) === d) return;
  }
}

/** `dir` at 0700; its missing parents at `parentMode` (0755: the state dir's; 0711: the run dir's). */
export function mkdirPrivateSync(dir: string, parentMode = 0o755): void {
  mkdirOpenSync(dirname(dir), parentMode);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}
