// Shared set-up for tests that run real sandboxes: their own cgroup subtree and scratch dir,
// so a leak check sees only what the tests made.
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostConfig, type HostConfig } from '../../src/config/host.js';
import { teardownsSettled } from '../../src/supervisor/teardowns.js';
import { stillThere } from './procs.mjs';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'tasks');
export const fixture = (name: string) => join(FIXTURES, name);

/** PAWL_TEST_TAG keeps two checkouts' suites on one machine out of each other's cgroups and dirs. */
export function testHost(name: string): HostConfig {
  const tag = process.env.PAWL_TEST_TAG ? `-${process.env.PAWL_TEST_TAG}` : '';
  return hostConfig({ cgroupParent: `pawl-${name}${tag}`, runDir: `/var/lib/pawl/test-runs-${name}${tag}` });
}

interface Mount {
  point: string;
  fstype: string;
  source: string;
}

/**
 * The HOST's mount table (pid 1's mount namespace, unfiltered): "mountpoint fstype source" per
 * mount. A runtime that unmounts a host mount (crun's hiding of cgroup2) or leaves one behind
 * changes it; the test process's own view, filtered to pawl's dirs, could show neither.
 */
export function hostMounts(): string[] {
  return parseMountinfo(readFileSync('/proc/1/mountinfo', 'utf8')).map((m) => `${m.point} ${m.fstype} ${m.source}`).sort();
}

function parseMountinfo(text: string): Mount[] {
  return text.split('\n').filter(Boolean).map((line) => {
    const [pre, post] = line.split(' - ') as [string, string];
    const [fstype, source] = post.split(' ') as [string, string];
    return { point: pre.split(' ')[4]!, fstype, source };
  });
}

/** Taken when a test file first imports this helper, before any of its runs. */
const BASELINE = hostMounts();

/** Every cgroup v1 and v2 hierarchy mounted on the host (name=systemd and hybrid unified included). */
export function cgroupMounts(): string[] {
  return parseMountinfo(readFileSync('/proc/1/mountinfo', 'utf8')).filter((m) => m.fstype === 'cgroup' || m.fstype === 'cgroup2').map((m) => m.point);
}

/**
 * Mounts gained ("+ ...") or lost ("- ...") since BASELINE, in the host's mount namespace. Runs of
 * other checkouts on a shared machine mount under their own state dirs (/var/lib/pawl/test-runs-*
 * of other tags), and in the v2 VM the test/vm file running beside this one under its own
 * (/var/lib/pawl/vm-*, /tmp/pawl-vm-*, /var/cache/pawl-vm-*): those alone are not this host's to judge.
 */
function mountChanges(host: HostConfig): string[] {
  // runc's own transient mounts (runc.XXXX) sit under the runtime state root of the host that
  // started it, /run/pawl/<runtime>/<cgroup parent>: another host's are another file's.
  const otherStateRoot = (point: string) => {
    const m = /^\/run\/pawl\/(runc|crun)\/(.+)$/.exec(point);
    return m !== null && !`${m[2]}/`.startsWith(`${host.cgroupParent}/`);
  };
  const others = (point: string) => (!`${point}/`.startsWith(`${host.runDir}/`) && /^(\/var\/lib\/pawl\/(test-|vm-)|\/(tmp|var\/cache)\/pawl-vm-)/.test(point)) || otherStateRoot(point);
  const now = hostMounts();
  const count = (list: string[]) => list.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map<string, number>());
  const [before, after] = [count(BASELINE), count(now)];
  const changes: string[] = [];
  for (const k of new Set([...before.keys(), ...after.keys()])) {
    const d = (after.get(k) ?? 0) - (before.get(k) ?? 0);
    if (others(k.split(' ')[0]!)) continue;
    for (let i = 0; i < Math.abs(d); i++) changes.push(`${d > 0 ? '+' : '-'} ${k}`);
  }
  return changes;
}

/**
 * Whether a process belongs to another pawl test host on this machine: it sits in a cgroup under a
 * different pawl-* parent. (A process this host leaked is in its own parent's group, or in none.)
 */
async function otherHosts(pid: string, host: HostConfig): Promise<boolean> {
  const text = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
  return text.split('\n').some((l) => {
    const top = l.split(':')[2]?.split('/')[1] ?? '';
    return top.startsWith('pawl') && top !== host.cgroupParent.split('/')[0];
  });
}

/**
 * Everything a run could leave behind, for one test host, once this process's teardowns that
 * went on after their results (runTask's default) have settled.
 */
export async function leftovers(host: HostConfig): Promise<{ cgroups: string[]; scratch: string[]; processes: number[]; mounts: string[] }> {
  await teardownsSettled();
  const cgroups: string[] = [];
  for (const mount of cgroupMounts()) {
    const dir = join(mount, host.cgroupParent);
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) cgroups.push(join(dir, e.name));
  }
  // The leftover list's dir stays once made; only a record in it is something left behind.
  // gc's leftover list and the OCI mount stage count by what is in them (an empty dir is no leak).
  const inside = async (d: string) => (await readdir(join(host.runDir, d)).catch(() => [] as string[])).map((r) => `${d}/${r}`);
  const scratch = (await Promise.all((await readdir(host.runDir).catch(() => [] as string[])).map((n) => (n === '.leftovers' || n === '.stage' ? inside(n) : [n])))).flat();
  const processes: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1);
    // A zombie is dead; one the kernel handed to the host's init is init's to reap.
    if (/^State:\s+Z/m.test(status)) continue;
    if (uid >= host.hostIdBase && uid < host.hostIdBase + host.hostIdCount && !(await otherHosts(pid, host))) processes.push(Number(pid));
  }
  return { cgroups, scratch, processes: await stillThere(processes), mounts: mountChanges(host) };
}
