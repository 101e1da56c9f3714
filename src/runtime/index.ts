// The runtime backends, chosen by policy.runtime / --runtime. Each is one folder behind the one
// interface (types.ts): bwrap/ (spawned through its shim), oci/ (runc and crun: bundles with
// create/start). A new backend is a new folder and one line in RUNTIMES.
import type { HostConfig } from '../config/host.js';
import { bwrapRuntime } from './bwrap/index.js';
import { OciRuntime } from './oci/runtime.js';
import type { ContainerRuntime, RuntimeName, SandboxInfo } from './types.js';

export type * from './types.js';
export { rootHostId } from './oci/runtime.js';

const RUNTIMES: Record<RuntimeName, ContainerRuntime> = { bwrap: bwrapRuntime, runc: new OciRuntime('runc'), crun: new OciRuntime('crun') };

export function runtimeFor(name: RuntimeName): ContainerRuntime {
  return RUNTIMES[name];
}

/** Every backend: gc asks each for the sandboxes it keeps state for. */
export const allRuntimes = (): ContainerRuntime[] => Object.values(RUNTIMES);

/** Every sandbox pawl owns under this host config, whatever its backend. */
export async function listSandboxes(host: HostConfig): Promise<SandboxInfo[]> {
  const lists = await Promise.all(allRuntimes().map((r) => r.list(host)));
  return lists.flat().sort((a, b) => b.ageMs - a.ageMs);
}
