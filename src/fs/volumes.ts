// Named volumes: one ext4 image per name under <stateDir>/volumes/<name>/, loop-mounted on its
// data dir, which is what a run binds. The image's size is the hard cap the kernel enforces
// (ENOSPC), as for /workspace (supervisor/workspace-fs.ts). The mount stays up between runs (the
// next run finds it mounted) and is made again from the image after a reboot. Needs root and loop
// devices; a policy with a volume is refused elsewhere.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PawlError } from '../errors.js';
import { loopMount, unmount } from './loop-mount.js';
import { workspaceFsUnavailable } from '../supervisor/workspace-fs.js';
import { runTool } from '../util/tool.js';
import { mkdirOpenSync } from '../util/private-dir.js';

export const volumeDir = (stateDir: string, name: string) => join(stateDir, 'volumes', name);

/**
 * The mounted filesystem's root, what a run binds: a dir of a random name in the volume's dir.
 * bwrap runs as the run's unprivileged host id and must traverse to the source it binds, so the
 * volume's dir is 0711 (enter, not list): the random name keeps other host users out of a data
 * dir that every run's host id may write (mode 1777: sticky, so none removes or renames another's files).
 */
export function volumeData(stateDir: string, name: string): string | null {
  const dir = volumeDir(stateDir, name);
  const m = existsSync(dir) ? readdirSync(dir).find((e) => /^data-[0-9a-f]{32}$/.test(e)) : undefined;
  return m ? join(dir, m) : null;
}

const pending = new Map<string, Promise<string>>();

/** The volume's data dir, mounted (made on first use at `size` bytes). */
export function ensureVolume(stateDir: string, name: string, size: number): Promise<string> {
  const key = volumeDir(stateDir, name);
  let p = pending.get(key);
  if (!p) {
    p = mountVolume(stateDir, name, size).finally(() => pending.delete(key));
    pending.set(key, p);
  }
  return p;
}

async function mountVolume(stateDir: string, name: string, size: number): Promise<string> {
  const why = workspaceFsUnavailable();
  if (why) throw new PawlError('HostUnsupported', `volume "${name}" needs a filesystem of its own for its size cap, and ${why}`);
  const dir = volumeDir(stateDir, name);
  mkdirOpenSync(dir, 0o711); // a state dir it makes is passable too, whatever the umask
  await chmod(join(stateDir, 'volumes'), 0o711);
  await chmod(dir, 0o711);
  const data = volumeData(stateDir, name) ?? join(dir, `data-${randomBytes(16).toString('hex')}`);
  await mkdir(data, { recursive: true, mode: 0o700 });
  const image = join(dir, 'image.ext4');
  if (!existsSync(image)) await makeImage(image, size);
  const have = statSync(image).size;
  if (have !== size) throw new PawlError('InvalidPolicy', `volume "${name}" exists with ${have} bytes, the policy asks for ${size}: use its size or remove ${dir}`);
  if (statSync(data).dev === statSync(dir).dev) await loopMount(image, data, { scratch: false });
  // Each run's user is a different host id: every one may add files (and read the others'), and
  // sticky, none may unlink or rename another's (without it, unlink-and-recreate replaced them).
  // Set on a volume mounted before too (an older pawl's 0777 stays until changed).
  if ((statSync(data).mode & 0o7777) !== 0o1777) await chmod(data, 0o1777);
  return data;
}

async function makeImage(image: string, size: number): Promise<void> {
  const tmp = `${image}.${process.pid}`;
  const f = await open(tmp, 'wx', 0o600);
  try {
    await f.truncate(size); // sparse: the disk pays for what is stored
  } finally {
    await f.close();
  }
  const mkfs = ['/usr/sbin/mkfs.ext4', '/sbin/mkfs.ext4'].find((p) => existsSync(p)) ?? 'mkfs.ext4';
  const r = await runTool(mkfs, ['-q', '-F', '-m', '0', '-O', '^resize_inode', '-E', 'nodiscard,root_owner=0:0', tmp]);
  if (r.exitCode !== 0) throw new PawlError('RuntimeError', `cannot make the volume's filesystem: mkfs.ext4: ${r.stderr}`);
  await rename(tmp, image);
}

/** Unmount a volume and delete it with its data (the operator's, and the tests'). */
export async function removeVolume(stateDir: string, name: string): Promise<void> {
  const dir = volumeDir(stateDir, name);
  const data = volumeData(stateDir, name);
  if (data && statSync(data).dev !== statSync(dir).dev) {
    const errno = unmount(data);
    if (errno !== 0) throw new PawlError('RuntimeError', `cannot unmount volume "${name}" (${data}): errno ${errno}; is a run using it?`);
  }
  // Unmounted (checked above): nothing of a task's is under dir but the image file itself.
  await rm(dir, { recursive: true, force: true });
}
