// Facts about this host: the cgroup driver (probed once per process) and the storage a run
// uses (read per run: mounts come and go). A protection the policy asks for and the host cannot
// apply is refused here (fail closed) unless the policy allows that degradation.
import { mkdir } from 'node:fs/promises';
import type { HostConfig } from '../config/host.js';
import type { Policy } from '../config/policy.js';
import { cgroupDriver } from '../cgroup/index.js';
import { ioDevicesFor } from '../cgroup/io-devices.js';
import type { CgroupDriver } from '../cgroup/types.js';
import { PawlError } from '../errors.js';
import { runtimeFor } from '../runtime/index.js';
import { factsCache } from '../hostfacts/cache.js';
import { cachedCgroupLayout } from '../hostfacts/facts.js';
import { workspaceFsUnavailable } from './workspace-fs.js';
import { apparmorEnabled } from '../lsm/apparmor/host.js';

const drivers = new Map<string, Promise<CgroupDriver>>();

export function driverFor(host: HostConfig): Promise<CgroupDriver> {
  let d = drivers.get(host.cgroupParent);
  if (!d) {
    d = cachedCgroupLayout(factsCache(host.stateDir)).then((layout) => cgroupDriver({ parent: host.cgroupParent, layout }));
    drivers.set(host.cgroupParent, d);
    d.catch(() => drivers.delete(host.cgroupParent));
  }
  return d;
}

export interface StoragePlan {
  /** Whole disks the io limits name: behind the run dir (and so /workspace), the rootfs and every bind. */
  ioDevices: string[];
  /** What needed no limit, and why (the result's `not_needed`). */
  notNeeded: string[];
  /** Gaps the policy allows (the result's `degraded`). */
  degraded: string[];
  /** /workspace gets a filesystem of its own (workspace-fs.ts). */
  workspaceFs: boolean;
}

/**
 * How a run's storage is limited, from the mounts as they are now (cgroup/io-devices.ts). Throws
 * HostUnsupported when a gap is one the policy makes fatal (policy.storage).
 */
export async function storagePlan(host: HostConfig, policy: Policy, rootfs: string): Promise<StoragePlan> {
  await mkdir(host.runDir, { recursive: true, mode: 0o711 });
  const placement = await ioDevicesFor(host.runDir, rootfs, ...policy.filesystem.binds.map((b) => b.src));
  const degraded: string[] = [];
  if (placement.noDevice.length) {
    if (policy.storage.requireIoDevice) {
      throw new PawlError('HostUnsupported', `cannot apply disk rate limits: ${placement.noDevice.join('; ')} (policy storage.requireIoDevice is set)`);
    }
    degraded.push(...placement.noDevice.map((n) => `io-limits: ${n}: disk rates there are not limited`));
  }
  const noWorkspaceFs = workspaceFsUnavailable();
  if (noWorkspaceFs) {
    if (policy.storage.requireWorkspaceFs) {
      throw new PawlError('HostUnsupported', `cannot give /workspace a filesystem of its own: ${noWorkspaceFs} (policy storage.requireWorkspaceFs is set)`);
    }
    degraded.push(`workspace-fs: ${noWorkspaceFs}; /workspace is held only by RLIMIT_FSIZE and a sampled usage walk`);
  }
  return { ioDevices: placement.devices, notNeeded: placement.notNeeded.map((n) => `io-limits: ${n}`), degraded, workspaceFs: noWorkspaceFs === null };
}

/** Refuse what this version of pawl cannot enforce at all, before any work is done. */
export function assertSupported(policy: Policy): void {
  if (policy.security.apparmorProfile !== undefined) {
    if (policy.runtime === 'bwrap') throw new PawlError('HostUnsupported', 'security.apparmorProfile is applied by runc/crun only; bwrap cannot confine a sandbox with an AppArmor profile');
    if (!apparmorEnabled()) throw new PawlError('HostUnsupported', 'security.apparmorProfile is set but AppArmor is not enabled in this kernel (/sys/module/apparmor/parameters/enabled)');
  }
  runtimeFor(policy.runtime).assertAvailable();
}
