// The caller's open fds never reach a sandbox (issue 10.4). node opens its own fds close-on-exec,
// but fds the process that started pawl left open (a platform's sockets, a directory on fd 42)
// are inherited by every child, and neither posix_spawn nor bwrap closes them. So around each
// spawn every fd >= 3 that lacks FD_CLOEXEC gets it, and gets its old flag back right after:
// spawnDirect (runtime/spawn.ts) returns only once the child has exec'd, so only the fds named in
// its stdio (dup2'd into place, which clears the flag on the copy) reach the child, whatever the
// backend. The restore keeps the library user's own intent for their other children.
import { readdirSync } from 'node:fs';
import { FD_CLOEXEC, F_GETFD, F_SETFD, loadLibc } from '../util/libc.js';

/** Run `spawn` (synchronous) with every inheritable fd >= 3 of this process marked close-on-exec. */
export function spawnWithoutStrayFds<T>(spawn: () => T): T {
  const libc = loadLibc();
  const marked: number[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (fd < 3) continue;
    const flags = libc.fcntl(fd, F_GETFD, 0);
    if (flags < 0 || flags & FD_CLOEXEC) continue; // closed meanwhile (readdir's own fd), or already safe
    if (libc.fcntl(fd, F_SETFD, flags | FD_CLOEXEC) === 0) marked.push(fd);
  }
  try {
    return spawn();
  } finally {
    for (const fd of marked) libc.fcntl(fd, F_SETFD, libc.fcntl(fd, F_GETFD, 0) & ~FD_CLOEXEC);
  }
}
