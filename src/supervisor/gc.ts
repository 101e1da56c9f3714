// Garbage collection: what a run leaves when its supervisor dies mid-run (SIGKILL, power loss),
// and what a run's own cleanup could not remove (the leftover list, leftovers.ts).
// The sandbox itself dies with its supervisor (--die-with-parent, and its pid namespace with it);
// its empty cgroup and scratch dir remain. A runc/crun container has no such tie and keeps
// running (within its cgroup limits) until gc deletes it. Whether a supervisor is gone is
// decided by hostfacts/liveness.ts (pid + start time + boot id + pid namespace), never by the pid alone.
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { HostConfig } from '../config/host.js';
import { allRuntimes, runtimeFor } from '../runtime/index.js';
import { driverFor } from './host.js';
import { idTime, ownerPid } from '../runtime/ids.js';
import { forgetLeftover, listLeftovers } from './leftovers.js';
import { judge, judgeByName, type Liveness } from '../hostfacts/liveness.js';
import { readOwner, removeTree } from './scratch.js';
import { unmountWorkspace, WORKSPACE_TEMPLATE } from './workspace-fs.js';
import { removeStaged, stagedSources } from '../fs/mounts.js';

export interface GcReport {
  /** runc/crun containers deleted, as "runtime:id". */
  containers: string[];
  cgroups: string[];
  scratch: string[];
  /** What could not be removed, and why (the sweep goes on past them). */
  errors: string[];
  /** Runs left alone: their supervisor's liveness cannot be judged from here (see --force), or they are another cgroup parent's. */
  skipped: string[];
  /** Why each skipped run was left alone. */
  skippedWhy: Record<string, string>;
}

export interface GcOptions {
  /** Also end runs older than this, live or not. */
  olderThanMs?: number;
  /** Also take runs whose supervisor's liveness cannot be judged from here (another pid namespace). */
  force?: boolean;
}

/**
 * Remove runs whose supervisor is gone, and (with olderThanMs) any run older than that. Live
 * runs of other supervisors are left alone unless they are older than olderThanMs, in which case
 * their processes are killed through their cgroup (only processes inside pawl's own groups).
 */
export async function collectGarbage(host: HostConfig, opts: GcOptions = {}): Promise<GcReport> {
  const report: GcReport = { containers: [], cgroups: [], scratch: [], errors: [], skipped: [], skippedWhy: {} };
  const skip = (id: string, why: string) => {
    if (!report.skipped.includes(id)) report.skipped.push(id);
    report.skippedWhy[id] ??= why;
  };
  const now = Date.now();
  const verdicts = new Map<string, Liveness>();
  /** Why a run's liveness is unknown, as liveness() found it. */
  const unknownWhy = new Map<string, string>();
  /**
   * The owner's liveness of run `id`: by its scratch dir's record when there is one. Without one,
   * by the pid in its name only for what lies in this run dir (a staged source); a cgroup or
   * container found under the cgroup parent alone may be another supervisor's, with a run dir of
   * its own and perhaps pids of another namespace (a container's): unknown, left alone unless forced.
   */
  const liveness = async (id: string, local: boolean): Promise<Liveness> => {
    const key = `${local}:${id}`;
    let v = verdicts.get(key);
    if (v) return v;
    const owner = await readOwner(join(host.runDir, id));
    const pid = ownerPid(id);
    if (owner) v = 'bootId' in owner ? judge(owner) : judgeByName(owner.pid, idTime(id));
    else v = pid === null ? 'alive' : local ? judgeByName(pid, idTime(id)) : 'unknown';
    if (v === 'unknown') {
      unknownWhy.set(id, owner ? 'its supervisor runs in another pid namespace (--force takes it)' : 'it has no record in this run dir: another supervisor\'s, with a state dir of its own (--force takes it)');
    }
    verdicts.set(key, v);
    return v;
  };
  const expired = async (name: string, createdMs: number, local = false) => {
    const id = name.replace(/^run-/, '');
    if (ownerPid(id) === null) return false; // not a run name pawl makes
    if (opts.olderThanMs !== undefined && now - createdMs > opts.olderThanMs) return true;
    const v = await liveness(id, local);
    if (v === 'unknown' && !opts.force) {
      skip(id, unknownWhy.get(id)!);
      return false;
    }
    return v !== 'alive';
  };
  // One bad entry must not stop the rest: each failure is reported and the sweep goes on.
  const attempt = async (what: string, f: () => Promise<void>) => {
    try {
      await f();
    } catch (e) {
      report.errors.push(`${what}: ${(e as Error).message}`);
    }
  };
  /** A list to sweep: one that cannot be read is reported, and the sweep goes on without it. */
  const listed = async <T>(what: string, list: () => Promise<T[]>): Promise<T[]> => {
    try {
      return await list();
    } catch (e) {
      report.errors.push(`${what}: ${(e as Error).message}`);
      return [];
    }
  };
  const driver = await driverFor(host);
  // The leftover list first: runs whose own cleanup failed (their result was returned already).
  for (const l of await listed('the leftover list', () => listLeftovers(host))) {
    await attempt(`leftover ${l.id}`, async () => {
      // Only what is this host config's: a run dir shared by supervisors with other cgroup
      // parents holds their leftovers too (the record's parent, or its scratch dir's owner, says
      // whose). A record names nothing but its run's own group and scratch dir.
      const scratch = join(host.runDir, l.id);
      const parent = l.cgroupParent ?? (await readOwner(scratch))?.cgroupParent ?? host.cgroupParent;
      if (parent !== host.cgroupParent) {
        skip(l.id, `its leftover record is cgroup parent ${parent}'s, not ${host.cgroupParent}'s`);
        return;
      }
      if (l.cgroup !== null && l.cgroup !== `run-${l.id}`) throw new Error(`its record names the cgroup ${l.cgroup}, not its own run-${l.id}`);
      if (l.scratch !== null && l.scratch !== scratch) throw new Error(`its record names the scratch dir ${l.scratch}, not its own ${scratch}`);
      if (l.runtime !== 'bwrap') {
        const info = (await runtimeFor(l.runtime).list(host)).find((s) => s.id === l.id);
        if (info) await runtimeFor(l.runtime).remove(host, info);
      }
      if (l.cgroup) {
        const group = driver.open(l.cgroup);
        await group.kill();
        await group.remove();
        report.cgroups.push(l.cgroup);
      }
      if (l.scratch) {
        await unmountScratchMounts(scratch);
        await removeTree(scratch, host.runDir);
        report.scratch.push(l.id);
      }
      await forgetLeftover(host, l.id);
    });
  }
  // The runtimes' own state first (delete --force kills the container and removes its cgroups).
  for (const runtime of allRuntimes().filter((r) => r.keepsState)) {
    for (const s of await listed(`${runtime.name}'s containers`, () => runtime.list(host))) {
      if (!(await expired(s.id, now - s.ageMs))) continue;
      await attempt(`${runtime.name} container ${s.id}`, async () => {
        await runtime.remove(host, s);
        report.containers.push(`${runtime.name}:${s.id}`);
      });
    }
  }
  for (const name of await listed('the run cgroups', () => driver.list())) {
    if (report.cgroups.includes(name) || !(await expired(name, idTime(name)))) continue;
    await attempt(`cgroup ${name}`, async () => {
      const group = driver.open(name);
      await group.kill();
      await group.remove();
      report.cgroups.push(name);
    });
  }
  // A scratch dir goes only when its run is provably over: made under this cgroup parent, its
  // supervisor gone (or the run too old), and its cgroup removed, so no process can still be in it.
  // Unreadable: no scratch dir is taken (one whose group still exists must stay).
  const groups = await driver.list().then((l) => new Set(l), () => null);
  for (const name of groups ? await readdir(host.runDir).catch(() => [] as string[]) : []) {
    const dir = join(host.runDir, name);
    await attempt(`scratch dir ${dir}`, async () => {
      const owner = await readOwner(dir);
      if (owner && owner.cgroupParent !== host.cgroupParent) return;
      // No record: a run dir whose supervisor died between making it and writing the record (it
      // made no cgroup yet), judged by the pid in its name; anything else is not pawl's.
      if (!owner && ownerPid(name) === null) return;
      const st = await stat(dir);
      if (!(await expired(name, st.mtimeMs, true)) || groups!.has(`run-${name}`)) return;
      await unmountScratchMounts(dir);
      await removeTree(dir, host.runDir);
      report.scratch.push(name);
    });
  }
  // runc/crun runs' bind sources, staged from prepare until the runtime's create (fs/mounts.ts): a
  // supervisor that died in between left them mounted. Each names its run, taken once that is over.
  for (const s of await stagedSources(host.runDir)) {
    if (!(await expired(s.runId, idTime(s.runId), true))) continue;
    await attempt(`staged source ${s.path}`, async () => {
      await removeStaged(s.path);
      report.scratch.push(`.stage/${basename(s.path)}`);
    });
  }
  return report;
}

/**
 * What a run dir may have mounted: /workspace, and the workspace template's mount while a cold
 * cache made it (workspace-fs.ts), which a supervisor that died then left behind.
 */
async function unmountScratchMounts(dir: string): Promise<void> {
  await unmountWorkspace(join(dir, 'workspace'));
  await unmountWorkspace(join(dir, `${WORKSPACE_TEMPLATE}.mnt`));
}

const done = new Set<string>();
/** Once per process and host config: clear what earlier, dead supervisors left. */
export async function collectGarbageOnce(host: HostConfig): Promise<void> {
  if (done.has(host.runDir)) return;
  done.add(host.runDir);
  await collectGarbage(host).catch(() => {});
}
