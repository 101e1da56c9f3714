// Garbage collection: what a run leaves when its supervisor dies mid-run (SIGKILL, power loss).
// The sandbox itself dies with its supervisor (--die-with-parent, and its pid namespace with it);
// its empty cgroup and scratch dir remain, named by the dead supervisor's pid. A runc/crun
// container has no such tie and keeps running (within its cgroup limits) until gc deletes it.
import { readdir, stat } from 'node:fs/promises';
import type { HostConfig } from '../config/host.js';
import { ociRuntimes } from '../runtime/index.js';
import { driverFor } from './host.js';
import { idTime, ownerPid } from './ids.js';
import { readOwner, removeTree } from './scratch.js';
import { unmountWorkspace } from './workspace-fs.js';
import { join } from 'node:path';

export interface GcReport {
  /** runc/crun containers deleted, as "runtime:id". */
  containers: string[];
  cgroups: string[];
  scratch: string[];
  /** What could not be removed, and why (the sweep goes on past them). */
  errors: string[];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: existence check only, nothing is sent
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove runs whose supervisor is gone, and (with olderThanMs) any run older than that. Live
 * runs of other supervisors are left alone unless they are older than olderThanMs, in which case
 * their processes are killed through their cgroup (only processes inside pawl's own groups).
 */
export async function collectGarbage(host: HostConfig, opts: { olderThanMs?: number } = {}): Promise<GcReport> {
  const report: GcReport = { containers: [], cgroups: [], scratch: [], errors: [] };
  const now = Date.now();
  const expired = (name: string, createdMs: number) => {
    const owner = ownerPid(name);
    if (owner === null) return false;
    if (owner !== process.pid && !alive(owner)) return true;
    return opts.olderThanMs !== undefined && now - createdMs > opts.olderThanMs;
  };
  // One bad entry must not stop the rest: each failure is reported and the sweep goes on.
  const attempt = async (what: string, f: () => Promise<void>) => {
    try {
      await f();
    } catch (e) {
      report.errors.push(`${what}: ${(e as Error).message}`);
    }
  };
  // The runtimes' own state first (delete --force kills the container and removes its cgroups).
  for (const runtime of ociRuntimes()) {
    for (const s of await runtime.list(host)) {
      if (!expired(s.id, now - s.ageMs)) continue;
      await attempt(`${runtime.name} container ${s.id}`, async () => {
        await runtime.remove(host, s);
        report.containers.push(`${runtime.name}:${s.id}`);
      });
    }
  }
  const driver = await driverFor(host);
  for (const name of await driver.list()) {
    if (!expired(name, idTime(name))) continue;
    await attempt(`cgroup ${name}`, async () => {
      const group = driver.open(name);
      await group.kill();
      await group.remove();
      report.cgroups.push(name);
    });
  }
  // A scratch dir goes only when its run is provably over: made under this cgroup parent, its
  // supervisor gone (or the run too old), and its cgroup removed, so no process can still be in it.
  const groups = new Set(await driver.list());
  for (const name of await readdir(host.runDir).catch(() => [] as string[])) {
    const dir = join(host.runDir, name);
    await attempt(`scratch dir ${dir}`, async () => {
      const owner = await readOwner(dir);
      if (!owner || owner.cgroupParent !== host.cgroupParent) return;
      const st = await stat(dir);
      if (!expired(name, st.mtimeMs) || groups.has(`run-${name}`)) return;
      await unmountWorkspace(join(dir, 'workspace'));
      await removeTree(dir, host.runDir);
      report.scratch.push(name);
    });
  }
  return report;
}

const done = new Set<string>();
/** Once per process and host config: clear what earlier, dead supervisors left. */
export async function collectGarbageOnce(host: HostConfig): Promise<void> {
  if (done.has(host.runDir)) return;
  done.add(host.runDir);
  await collectGarbage(host).catch(() => {});
}
