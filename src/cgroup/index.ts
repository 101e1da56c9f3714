// The cgroup layer's entry point: probe the host once, hand out the driver that fits it.
import type { DriverOptions } from './options.js';
import { probeCgroups } from './probe.js';
import type { CgroupDriver } from './types.js';
import { CgroupV1Driver } from './v1/manager.js';
import { CgroupV2Driver } from './v2/manager.js';

export type * from './types.js';
export { cgroupLimits } from './limits.js';
export { ioDevicesFor, resolveIoDevices, type IoPlacement, type StorageSnapshot } from './io-devices.js';
export { parseCgroupMounts, probeCgroups, type CgroupMounts } from './probe.js';
export type { DriverOptions, HostOps } from './options.js';
export type { PlannedWrite } from './files.js';
export { CgroupV1Driver, type V1Options } from './v1/manager.js';
export { CgroupV2Driver } from './v2/manager.js';

/** The driver for this host's cgroup version. opts.root points it at a fake tree instead of the probed mounts. */
export async function cgroupDriver(opts: DriverOptions = {}): Promise<CgroupDriver> {
  const host = opts.layout ?? (await probeCgroups());
  if (host.version === 'v2') return new CgroupV2Driver({ ...opts, root: opts.root ?? host.mounts.memory });
  return new CgroupV1Driver(opts.root ? opts : { ...opts, mounts: host.mounts });
}
