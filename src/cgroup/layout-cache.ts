// The host's cgroup layout, cached across processes (hostfacts/cache.ts) under the boot id and the
// mount table it was read from. Here, not in hostfacts/, because hostfacts sits below cgroup/.
import { readFileSync } from 'node:fs';
import type { FactsCache } from '../hostfacts/cache.js';
import { bootId, mountinfoHash, sha256 } from '../hostfacts/keys.js';
import { detectCgroups } from './probe.js';
import type { HostCgroups } from './types.js';

export async function cachedCgroupLayout(cache: FactsCache, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): Promise<HostCgroups> {
  return cache.remember('cgroup-layout', sha256(bootId(), mountinfoHash(mountinfo)), () => detectCgroups(mountinfo));
}
