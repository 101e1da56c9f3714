// Facts about this host, probed once per process: the cgroup driver and the disk under the
// scratch dir. A protection the policy asks for and the host cannot apply is refused here
// (fail closed) unless the policy allows that degradation.
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { HostConfig } from '../config/host.js';
import type { Policy } from '../config/policy.js';
import { cgroupDriver, diskDeviceFor } from '../cgroup/index.js';
import type { CgroupDriver } from '../cgroup/types.js';
import { PawlError } from '../errors.js';
import { runtimeFor } from '../runtime/index.js';
import { factsCache } from '../hostfacts/cache.js';
import { cachedCgroupLayout } from '../hostfacts/facts.js';

const drivers = new Map<string, Promise<CgroupDriver>>();
const devices = new Map<string, Promise<string | null>>();

export function driverFor(host: HostConfig): Promise<CgroupDriver> {
  let d = drivers.get(host.cgroupParent);
  if (!d) {
    d = cachedCgroupLayout(factsCache(host.stateDir)).then((layout) => cgroupDriver({ parent: host.cgroupParent, layout }));
    drivers.set(host.cgroupParent, d);
    d.catch(() => drivers.delete(host.cgroupParent));
  }
  return d;
}

export function ioDeviceFor(host: HostConfig): Promise<string | null> {
  let d = devices.get(host.runDir);
  if (!d) {
    d = mkdir(host.runDir, { recursive: true, mode: 0o711 }).then(() => diskDeviceFor(host.runDir));
    devices.set(host.runDir, d);
  }
  return d;
}

/** The io device to throttle, or null with the degradation recorded; throws when not allowed. */
export async function ioDeviceOrRefuse(host: HostConfig, policy: Policy, degraded: string[]): Promise<string | null> {
  const dev = await ioDeviceFor(host);
  if (dev) return dev;
  if (policy.allowDegraded.includes('io-limits')) {
    degraded.push(`io-limits: ${host.runDir} is not on a block device, so disk read/write rates are not limited`);
    return null;
  }
  throw new PawlError('HostUnsupported', `cannot apply disk rate limits: ${host.runDir} is not on a block device (tmpfs/overlay?); put runDir on a disk or allow the "io-limits" degradation`);
}

/** Refuse what this version of pawl cannot enforce at all, before any work is done. */
export function assertSupported(policy: Policy): void {
  if (policy.security.apparmorProfile !== undefined) {
    if (policy.runtime === 'bwrap') throw new PawlError('HostUnsupported', 'security.apparmorProfile is applied by runc/crun only; bwrap cannot confine a sandbox with an AppArmor profile');
    if (!apparmorEnabled()) throw new PawlError('HostUnsupported', 'security.apparmorProfile is set but AppArmor is not enabled in this kernel (/sys/module/apparmor/parameters/enabled)');
  }
  runtimeFor(policy.runtime).assertAvailable();
}

function apparmorEnabled(): boolean {
  try {
    return readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';
  } catch {
    return false;
  }
}
