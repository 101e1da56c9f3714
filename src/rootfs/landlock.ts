// The Landlock launcher (rootfs/landlock/landlock-exec.c) compiled into a static binary for the
// rootfs: static, so it needs no library the rootfs would have to carry. Built by the rootfs build
// on first use and again whenever its source changes; gcc is required to build a rootfs at all.
import { existsSync, statSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../config/host.js';
import { PawlError } from '../errors.js';
import { runTool } from '../util/tool.js';

export const LANDLOCK_HELPER = '/opt/pawl/landlock-exec';
/** An empty file no one may open (mode 000): bound over blocked files (src/fs/blocked.ts). */
export const BLOCKED_FILE = '/opt/pawl/blocked';

const SOURCE = join(PACKAGE_ROOT, 'rootfs', 'landlock', 'landlock-exec.c');
const BINARY = join(PACKAGE_ROOT, 'dist', 'landlock-exec');
const GCC = ['/usr/bin/gcc', '/usr/local/bin/gcc'];

/** The rootfs files this module brings: the launcher and the blocked-file placeholder. */
export async function landlockRootfsFiles(): Promise<{ source: string; dest: string; mode: number }[]> {
  return [
    { source: await helperBinary(), dest: LANDLOCK_HELPER, mode: 0o755 },
    { source: join(PACKAGE_ROOT, 'rootfs', 'landlock', 'blocked'), dest: BLOCKED_FILE, mode: 0o000 },
  ];
}

async function helperBinary(): Promise<string> {
  const src = statSync(SOURCE);
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= src.mtimeMs) return BINARY;
  const gcc = GCC.find((p) => existsSync(p));
  if (!gcc) throw new PawlError('HostUnsupported', `rootfs: building ${LANDLOCK_HELPER} needs gcc (Debian: apt-get install gcc libc6-dev), which is not installed`);
  await mkdir(join(PACKAGE_ROOT, 'dist'), { recursive: true });
  const tmp = `${BINARY}.${process.pid}`;
  const r = await runTool(gcc, ['-static', '-O2', '-Wall', '-o', tmp, SOURCE]);
  if (r.exitCode !== 0) throw new PawlError('HostUnsupported', `rootfs: cannot build ${LANDLOCK_HELPER} with gcc (a static build needs libc6-dev): ${r.stderr}`);
  await rename(tmp, BINARY); // atomic: a concurrent builder never sees half a binary
  return BINARY;
}
