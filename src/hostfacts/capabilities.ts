// What this host cannot do, in one place: every refusal of the kind "the policy is fine, but this
// host cannot apply X" is built here, naming the missing kernel feature or Debian package, and the
// checks that are plain host facts live here too. Policy refusals are the schema's
// (config/policy.ts): a policy the schema accepts is never refused later for a policy reason.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PawlError } from '../errors.js';

const refuse = (message: string) => new PawlError('HostUnsupported', message);

/** The host refusals, each naming what is missing and how to get it. */
export const hostLacks = {
  /** A program from a Debian package. */
  program: (what: string, looked: string[], pkg: string, instead = '') =>
    refuse(`${what} is not installed (looked for ${looked.join(', ')}): install the Debian package "${pkg}"${instead}`),
  root: (what: string, instead: string) => refuse(`${what} needs pawl to run as root${instead}`),
  library: (file: string, pkg: string, why: string) => refuse(`cannot load ${file} (install the ${pkg} package): ${why}`),
  arch: (what: string, supported: string) => refuse(`${what} are built for ${supported} only, not ${process.arch}`),
  cgroupController: (version: string, controller: string, why: string) =>
    refuse(`the cgroup ${version} "${controller}" controller is not mounted; pawl needs it for ${why}`),
  cgroupFile: (path: string, controller: string, file: string) =>
    refuse(`${path} does not exist: this kernel's cgroup ${controller} controller does not provide ${file}`),
  swapAccounting: (where: string) =>
    refuse(`${where}: swap is active and the kernel has no memory cgroup swap accounting (CONFIG_MEMCG_SWAP, boot with swapaccount=1), so the memory limit could be bypassed through swap (allow it with allowDegraded: ["swap-limit"])`),
  apparmor: (file: string) => refuse(`security.apparmorProfile is set but AppArmor is not enabled in this kernel (CONFIG_SECURITY_APPARMOR; ${file})`),
  /** A gap the default policy runs with, made fatal by the operator's policy switch. */
  required: (what: string, why: string, flag: string) => refuse(`cannot ${what}: ${why} (policy ${flag} is set)`),
};

/** Whether any swap device is active (/proc/swaps lists one). */
export function swapActive(swaps = '/proc/swaps'): boolean {
  try {
    return readFileSync(swaps, 'utf8').trim().split('\n').length > 1;
  } catch {
    return false;
  }
}

/**
 * Why the run's memory limit cannot also hold swap on this host, or null when it can (or need not:
 * no swap is active, so there is nothing to bypass the limit through). v1 has memsw files when the
 * kernel accounts swap; v2 has memory.swap.max in every non-root group (the root has none).
 */
export function swapLimitGap(layout: { version: string; mounts: Record<string, string> }, active = swapActive()): string | null {
  if (!active) return null;
  const memory = layout.mounts.memory;
  if (!memory) return null; // the driver refuses a host without the memory controller itself
  if (layout.version === 'v1') {
    return existsSync(join(memory, 'memory.memsw.limit_in_bytes')) ? null : `${join(memory, 'memory.memsw.limit_in_bytes')} does not exist`;
  }
  const child = readdirSync(memory, { withFileTypes: true }).find((e) => e.isDirectory() && existsSync(join(memory, e.name, 'memory.current')));
  if (!child || existsSync(join(memory, child.name, 'memory.swap.max'))) return null;
  return `${join(memory, child.name, 'memory.swap.max')} does not exist`;
}
