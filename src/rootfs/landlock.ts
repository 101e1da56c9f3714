// The Landlock launcher (rootfs/landlock/landlock-exec.c) compiled into a static binary for the
// rootfs (util/static-binary.ts). Built by the rootfs build on first use and again whenever its
// source changes; gcc is required to build a rootfs at all.
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../config/host.js';
import { staticBinary } from '../util/static-binary.js';

export const LANDLOCK_HELPER = '/opt/pawl/landlock-exec';
/** An empty file no one may open (mode 000): bound over blocked files (src/fs/blocked.ts). */
export const BLOCKED_FILE = '/opt/pawl/blocked';

const SOURCE = join(PACKAGE_ROOT, 'rootfs', 'landlock', 'landlock-exec.c');
const BINARY = join(PACKAGE_ROOT, 'dist', 'landlock-exec');

/** The rootfs files this module brings: the launcher and the blocked-file placeholder. */
export async function landlockRootfsFiles(): Promise<{ source: string; dest: string; mode: number }[]> {
  return [
    { source: await helperBinary(), dest: LANDLOCK_HELPER, mode: 0o755 },
    { source: join(PACKAGE_ROOT, 'rootfs', 'landlock', 'blocked'), dest: BLOCKED_FILE, mode: 0o000 },
  ];
}

function helperBinary(): Promise<string> {
  return staticBinary(SOURCE, BINARY, `the rootfs's ${LANDLOCK_HELPER}`);
}
