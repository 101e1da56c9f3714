// The host's cgroup layout, cached across processes (hostfacts/cache.ts) under the boot id and the
// mount table's cgroup lines (and cgroup2's controllers) it was read from. Here, not in
// hostfacts/, because hostfacts sits below cgroup/.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FactsCache } from '../hostfacts/cache.js';
import { readOptional } from './files.js';
import { bootId, sha256 } from '../hostfacts/keys.js';
import { cgroupMountLines, detectCgroups, parseCgroupMounts } from './probe.js';
import type { HostCgroups } from './types.js';

/**
 * Keyed on the cgroup and cgroup2 lines alone, the only ones the layout is read from
 * (parseCgroupMounts): the whole table changes with every run's /workspace mount, which made
 * every run recompute the layout and rewrite the cache (~1 ms of a pooled run's supervisor CPU).
 */
export async function cachedCgroupLayout(cache: FactsCache, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): Promise<HostCgroups> {
  // And the cgroup2 root's controllers, which detectCgroups reads live: the key covers all it reads.
  const { unified } = parseCgroupMounts(mountinfo);
  const controllers = unified ? ((await readOptional(join(unified, 'cgroup.controllers'))) ?? '') : '';
  return cache.remember('cgroup-layout', sha256(bootId(), ...cgroupMountLines(mountinfo), `controllers=${controllers}`), () => detectCgroups(mountinfo));
}
