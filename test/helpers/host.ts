// Shared set-up for tests that run real sandboxes: their own cgroup subtree and scratch dir,
// so a leak check sees only what the tests made.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostConfig, type HostConfig } from '../../src/config/host.js';
import { probeCgroups } from '../../src/cgroup/probe.js';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'tasks');
export const fixture = (name: string) => join(FIXTURES, name);

/** PAWL_TEST_TAG keeps two checkouts' suites on one machine out of each other's cgroups and dirs. */
export function testHost(name: string): HostConfig {
  const tag = process.env.PAWL_TEST_TAG ? `-${process.env.PAWL_TEST_TAG}` : '';
  return hostConfig({ cgroupParent: `pawl-${name}${tag}`, runDir: `/var/lib/pawl/test-runs-${name}${tag}` });
}

/** Everything a run could leave behind, for one test host. */
export async function leftovers(host: HostConfig): Promise<{ cgroups: string[]; scratch: string[]; processes: number[]; mounts: string[] }> {
  const { mounts } = await probeCgroups();
  const cgroups: string[] = [];
  for (const mount of new Set(Object.values(mounts).filter(Boolean) as string[])) {
    const dir = join(mount, host.cgroupParent);
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) cgroups.push(join(dir, e.name));
  }
  const scratch = await readdir(host.runDir).catch(() => [] as string[]);
  const processes: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1);
    // A zombie is dead; one the kernel handed to the host's init is init's to reap.
    if (/^State:\s+Z/m.test(status)) continue;
    if (uid >= host.hostIdBase && uid < host.hostIdBase + host.hostIdCount) processes.push(Number(pid));
  }
  const mountsText = await readFile('/proc/self/mountinfo', 'utf8');
  const leakedMounts = mountsText.split('\n').filter((l) => l.includes(host.runDir) || l.includes('/var/lib/pawl/rootfs'));
  return { cgroups, scratch, processes, mounts: leakedMounts };
}
