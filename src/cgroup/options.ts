// What a driver needs from its caller and from the OS beyond reading and writing control files.
import { mkdir, readFile, rmdir } from 'node:fs/promises';
import { CgroupParent } from '../config/cgroup-parent.js';
import { PawlError } from '../errors.js';
import type { HostCgroups } from './types.js';

/**
 * The few OS calls a driver makes besides reading and writing control files. Tests replace them
 * to drive a fake tree: a real kernel fills a new cgroup dir with control files and lets rmdir
 * remove it while they are there, a plain directory does neither.
 */
export interface HostOps {
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  kill(pid: number, signal: NodeJS.Signals): void;
  /** Whether any swap device is active (/proc/swaps has an entry). */
  swapActive(): Promise<boolean>;
}

export interface DriverOptions {
  /** Where the cgroup filesystem(s) are mounted; a fake tree in tests. Default: what the host probe found. */
  root?: string;
  /** pawl's subtree under each hierarchy. Default 'pawl'. */
  parent?: string;
  ops?: Partial<HostOps>;
  /** The host's layout when already known (hostfacts' cache); probed otherwise. */
  layout?: HostCgroups;
}

export const hostOps: HostOps = {
  mkdir: async (path) => {
    await mkdir(path);
  },
  rmdir: (path) => rmdir(path),
  kill: (pid, signal) => process.kill(pid, signal),
  swapActive: async () => (await readFile('/proc/swaps', 'utf8')).trim().split('\n').length > 1,
};

const NAME = /^[\w.-]+$/;

/** config/cgroup-parent.ts holds the rule, so a HostConfig that parses is one every driver accepts. */
export function checkParent(parent: string): string {
  if (!CgroupParent.safeParse(parent).success) {
    throw new PawlError('InvalidPolicy', `invalid cgroup parent "${parent}": expected a relative path whose last component starts with "pawl"`);
  }
  return parent;
}

export function checkName(name: string): string {
  if (!NAME.test(name) || name === '.' || name === '..') {
    throw new Error(`invalid cgroup name "${name}": expected letters, digits, "_", "-" or "."`);
  }
  return name;
}
