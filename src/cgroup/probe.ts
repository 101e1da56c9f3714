// Which cgroup version this host runs and where each controller is mounted, from the kernel's
// own mount table.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PawlError } from '../errors.js';
import { readOptional } from './files.js';
import type { HostCgroups } from './types.js';

export type { HostCgroups } from './types.js';


export interface CgroupMounts {
  /** v1 controller -> mount point. */
  v1: Record<string, string>;
  unified: string | null;
}

const V1_CONTROLLERS = new Set([
  'blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'hugetlb', 'memory', 'misc', 'net_cls', 'net_prio', 'perf_event', 'pids', 'rdma',
]);

/** mountinfo escapes space, tab, newline and backslash in paths as \ooo. */
function unescape(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The lines of a /proc/self/mountinfo text that mount a cgroup or cgroup2 filesystem: all parseCgroupMounts reads. */
export function cgroupMountLines(mountinfo: string): string[] {
  return mountinfo.split('\n').filter((line) => /^(cgroup2?) /.test(line.slice(line.indexOf(' - ') + 3)));
}

/** The cgroup mounts in a /proc/self/mountinfo text (proc(5)). */
export function parseCgroupMounts(mountinfo: string): CgroupMounts {
  const v1: Record<string, string> = {};
  const v1Root: Record<string, string> = {};
  let unified: string | null = null;
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (sep < 0) continue;
    const [root, mountPoint] = [fields[3]!, unescape(fields[4]!)];
    const [fstype, , superOptions = ''] = fields.slice(sep + 1);
    if (fstype === 'cgroup2') {
      if (unified === null || mountPoint === '/sys/fs/cgroup') unified = mountPoint;
    } else if (fstype === 'cgroup') {
      // The same hierarchy can be mounted more than once (bind mounts into containers); the one
      // showing the hierarchy's root is the one whose paths mean what /proc/<pid>/cgroup says.
      for (const opt of superOptions.split(',').filter((o) => V1_CONTROLLERS.has(o))) {
        if (!(opt in v1) || (v1Root[opt] !== '/' && root === '/')) {
          v1[opt] = mountPoint;
          v1Root[opt] = root;
        }
      }
    }
  }
  return { v1, unified };
}

/** The layout a mount table describes (plus the cgroup2 root's controllers, read live). */
export async function detectCgroups(mountinfo?: string): Promise<HostCgroups> {
  const { v1, unified } = parseCgroupMounts(mountinfo ?? (await readFile('/proc/self/mountinfo', 'utf8')));
  if (unified !== null) {
    const controllers = (await readOptional(join(unified, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter(Boolean);
    if (controllers.includes('memory')) {
      return { version: 'v2', mounts: Object.fromEntries(controllers.map((c) => [c, unified])), unified };
    }
  }
  if ('memory' in v1) return { version: 'v1', mounts: v1, unified };
  throw new PawlError(
    'HostUnsupported',
    `no cgroup memory controller is available: /proc/self/mountinfo shows ${unified ? `cgroup2 at ${unified} without memory in its cgroup.controllers` : 'no cgroup2 mount'} and no cgroup v1 memory hierarchy`,
  );
}

let cached: Promise<HostCgroups> | undefined;

/** The host's cgroup layout, probed once per process. */
export function probeCgroups(): Promise<HostCgroups> {
  cached ??= detectCgroups().catch((e: unknown) => {
    cached = undefined;
    throw e;
  });
  return cached;
}
