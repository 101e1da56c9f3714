// Host-side resolution of a mount's source without following any symlink: the path is opened one
// component at a time, each with O_PATH|O_NOFOLLOW from the fd of the one before, and refused as
// soon as a component is a symlink. The runtime then binds exactly the object that fd holds
// (bwrap --bind-fd; runc/crun a /proc/<pid>/fd/<n> source, which the kernel resolves to the open
// file, not to a name), so swapping a component for a symlink after the check changes nothing.
import { closeSync, fstatSync } from 'node:fs';
import { constants } from 'node:fs';
import { PawlError } from '../errors.js';
import { AT_FDCWD, errnoCode, loadLibc } from '../util/libc.js';

// <fcntl.h>: O_PATH and O_CLOEXEC have the same value on x86_64 and arm64; node does not export them.
const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;

/**
 * An O_PATH fd (close-on-exec) on `path`, which must be absolute and normalised, with no symlink
 * in any component. Throws InvalidPolicy naming the component otherwise.
 */
export function openNoSymlinks(path: string, what: string): number {
  const c = loadLibc();
  let fd = c.openat(AT_FDCWD, '/', O_PATH | O_CLOEXEC | constants.O_DIRECTORY);
  if (fd < 0) throw new PawlError('RuntimeError', `cannot open / for ${what}: ${errnoCode()}`);
  let at = '';
  try {
    for (const name of path.split('/').filter(Boolean)) {
      at += `/${name}`;
      const next = c.openat(fd, name, O_PATH | O_CLOEXEC | constants.O_NOFOLLOW);
      if (next < 0) throw new PawlError('InvalidPolicy', `${what}: cannot open ${at}: ${errnoCode()}`);
      closeSync(fd);
      fd = next;
      // O_PATH|O_NOFOLLOW opens a symlink itself rather than failing: its type says so.
      if (fstatSync(fd).isSymbolicLink()) throw new PawlError('InvalidPolicy', `${what}: ${at} is a symlink; a mount source must name the real path (no symlink in any component)`);
    }
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}
