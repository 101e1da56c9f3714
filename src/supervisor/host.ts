// Facts about this host: the cgroup driver (probed once per process) and the storage a run
// uses (read per run: mounts come and go). A protection the policy asks for and the host cannot
// apply is refused here (fail closed) unless the policy allows that degradation.
import type { HostConfig } from '../config/host.js';
import type { Policy } from '../config/policy.js';
import { cgroupDriver } from '../cgroup/index.js';
import { ioDevicesFor } from '../cgroup/io-devices.js';
import type { CgroupDriver } from '../cgroup/types.js';
import { degrade } from '../hostfacts/degrade.js';
import { hostLacks, swapLimitGap } from '../hostfacts/capabilities.js';
import { runtimeFor } from '../runtime/index.js';
import { factsCache } from '../hostfacts/cache.js';
import { cachedCgroupLayout } from '../cgroup/layout-cache.js';
import { workspaceFsUnavailable } from './workspace-fs.js';
import { APPARMOR_ENABLED_FILE, apparmorEnabled } from '../lsm/apparmor/host.js';
import { mkdirOpenSync } from '../util/private-dir.js';
import { statfsSync } from 'node:fs';
import { release } from 'node:os';

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
  /** Those behind the run dir alone: where /workspace's image is (empty: memory, or no device). */
  runDirDevices: string[];
  /** What needed no limit, and why (the result's `not_needed`). */
  notNeeded: string[];
  /** Gaps the policy allows (the result's `degraded`). */
  degraded: string[];
  /** /workspace gets a filesystem of its own (workspace-fs.ts). */
  workspaceFs: boolean;
  /** The memory limit holds swap too (false only where the host cannot and the policy allows it: `degraded` says so). */
  swapLimit: boolean;
}

/**
 * How a run's storage and memory are limited, from the mounts as they are now
 * (cgroup/io-devices.ts) and the host's swap accounting. Every gap goes through the one degrade
 * step (hostfacts/degrade.ts): HostUnsupported when the policy makes it fatal, else `degraded`.
 */
function kernelAtLeast(major: number, minor: number): boolean {
  const [a = 0, b = 0] = release().split('.').map((n) => parseInt(n, 10));
  return a > major || (a === major && b >= minor);
}

/** statfs f_type of tmpfs and ramfs (linux/magic.h). */
const MEMORY_FS_MAGIC = new Set([0x01021994, 0x858458f6]);

export async function storagePlan(host: HostConfig, policy: Policy, rootfs: string, noWorkspaceFs = workspaceFsUnavailable()): Promise<StoragePlan> {
  mkdirOpenSync(host.runDir, 0o711);
  const [placement, layout] = await Promise.all([
    ioDevicesFor(host.runDir, rootfs, ...policy.filesystem.binds.map((b) => b.src)),
    cachedCgroupLayout(factsCache(host.stateDir)),
  ]);
  const degraded: string[] = [];
  for (const n of placement.noDevice) {
    degrade(degraded, {
      name: 'io-limits', detail: `${n}: disk rates there are not limited`, allowed: !policy.storage.requireIoDevice,
      refusal: () => hostLacks.required('apply disk rate limits', placement.noDevice.join('; '), 'storage.requireIoDevice'),
    });
  }
  if (noWorkspaceFs) {
    degrade(degraded, {
      name: 'workspace-fs', detail: `${noWorkspaceFs}; /workspace is held only by RLIMIT_FSIZE and a sampled usage walk`, allowed: !policy.storage.requireWorkspaceFs,
      refusal: () => hostLacks.required('give /workspace a filesystem of its own', noWorkspaceFs, 'storage.requireWorkspaceFs'),
    });
  }
  // /workspace's image on a tmpfs run dir is memory the run's limit does not count on v1 (the
  // loop device writes it; v1 has no cgroup writeback to say for whom: measured, 90 MB in
  // /workspace beside a 66 MB peak under 64 MB). On v2 the loop device charges the pages to the
  // group whose writeback it serves (Linux 5.14+, "loop: charge i/o to mem and blk cg"), through
  // the run's io controller, which it has when it has disk limits (the VM: 120 MB under 64 MB
  // was ResourceExhausted/memory); otherwise it is named as on v1.
  const charged = layout.version === 'v2' && kernelAtLeast(5, 14) && placement.devices.length > 0;
  if (noWorkspaceFs === null && !charged && MEMORY_FS_MAGIC.has(statfsSync(host.runDir).type)) {
    // Named, not refused: /workspace stays bounded by its size, only not by the memory limit.
    degraded.push(`workspace-memory: ${host.runDir} is in memory (tmpfs): /workspace's image (up to resources.diskSpace, ${policy.resources.diskSpace} bytes) is host memory the run's memory limit does not count; a run dir on a disk makes it disk`);
  }
  const noSwapLimit = swapLimitGap(layout);
  if (noSwapLimit) {
    degrade(degraded, {
      name: 'swap-limit', detail: `${noSwapLimit}; the memory limit does not hold swap (the run can use swap beyond it)`, allowed: policy.allowDegraded.includes('swap-limit'),
      refusal: () => hostLacks.swapAccounting(noSwapLimit),
    });
  }
  return { ioDevices: placement.devices, runDirDevices: placement.byPath[host.runDir] ?? [], notNeeded: placement.notNeeded.map((n) => `io-limits: ${n}`), degraded, workspaceFs: noWorkspaceFs === null, swapLimit: noSwapLimit === null };
}

/** Refuse what this version of pawl cannot enforce at all, before any work is done. */
export function assertSupported(policy: Policy): void {
  // (runtime bwrap with a profile is a policy error: the schema refuses it.)
  if (policy.security.apparmorProfile !== undefined && !apparmorEnabled()) throw hostLacks.apparmor(APPARMOR_ENABLED_FILE);
  runtimeFor(policy.runtime).assertAvailable();
}
