// What one run holds on the host (scratch dir, cgroup, egress proxy, host id, the runtime's
// sandbox), recorded as each is made, so that one release() on every path out removes exactly
// what exists: after a failed prepare as after a finished run.
import type { RunCgroup } from '../../cgroup/types.js';
import type { HostConfig } from '../../config/host.js';
import type { Policy } from '../../config/policy.js';
import type { EgressProxy, EgressStats } from '../../network/index.js';
import type { RuntimeSandbox } from '../../runtime/index.js';
import { releaseHostId } from '../../runtime/ids.js';
import { recordLeftover } from '../leftovers.js';
import { removeTree, type Scratch } from '../scratch.js';
import { unmountWorkspace, WORKSPACE_IMAGE } from '../workspace-fs.js';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { closeSources, type OpenedSources } from '../../fs/mounts.js';

export class RunResources {
  hostId: number | null = null;
  scratch: Scratch | null = null;
  cgroup: RunCgroup | null = null;
  egress: EgressProxy | null = null;
  sandbox: RuntimeSandbox | null = null;
  /** Bind/volume sources the supervisor opened (fs/mounts.ts): closed once the runtime has made its mounts. */
  sources: OpenedSources | null = null;

  constructor(readonly id: string, private readonly policy: Policy, private readonly host: HostConfig, private readonly unmountFlushMs?: number) {}

  /** Stop the run's egress proxy (idempotent) and take its final figures. */
  async closeEgress(): Promise<EgressStats | null> {
    if (!this.egress) return null;
    await this.egress.close();
    return this.egress.stats();
  }

  /**
   * A normal end empties the group already (the pid namespace dies with its init): then nothing
   * to kill. Otherwise (a run ended at its reply, a kill) the namespace's init goes first, which
   * spares v1 the freezer (RunCgroup KillOptions), then whatever is left.
   */
  async killGroupIfPopulated(opts: { wait?: boolean } = {}): Promise<void> {
    if (!this.cgroup) return;
    // At a reply (no wait) the group is populated for sure: not read first (v1: six cgroup.procs
    // files, ~0.4 ms of a pooled run).
    const left = opts.wait === false ? [1] : await this.cgroup.pids().catch(() => [1]);
    if (left.length) await this.cgroup.kill({ firstKill: () => this.sandbox?.killNamespace() ?? false, ...opts }).catch(() => {});
  }

  /**
   * Remove everything, and on failure put it on the leftover list gc retries; returns the
   * failure's message, or null. A cleanup that fails (a group stuck in D state) never replaces a
   * run's verdict.
   */
  async release(): Promise<string | null> {
    try {
      await this.remove();
      return null;
    } catch (e) {
      const message = (e as Error).message;
      await recordLeftover(this.host, {
        id: this.id, runtime: this.policy.runtime, cgroup: this.cgroup ? this.cgroup.name : null, scratch: this.scratch ? this.scratch.dir : null, cgroupParent: this.host.cgroupParent, error: message,
      }).catch(() => {});
      return message;
    }
  }

  /** The runtime has made its mounts (bwrap: bound the fds; runc/crun: create has exited): let the sources go. */
  async closeSources(): Promise<void> {
    await closeSources(this.sources);
  }

  /**
   * Only after every process of the run is dead. Each step is bounded (the group kill and rmdir
   * poll for at most 2 s and 1 s, the runtime's destroy waits with a deadline, the unmount flushes
   * under one: workspace-fs.ts), so a process asleep in uninterruptible I/O delays the result by
   * seconds, never by the I/O. What could not go is named in the error, for cleanup_error.
   */
  private async remove(): Promise<void> {
    await this.closeSources().catch(() => {});
    await this.closeEgress().catch(() => {});
    await this.killGroupIfPopulated();
    try {
      // The runtime's own state (its fds; runc/crun delete --force), on every path out.
      await this.sandbox?.destroy();
    } finally {
      // The scratch dir only once the group is gone: rmdir succeeding proves no process of the
      // run is left to race the removal. Otherwise it stays for gc, which checks the same.
      if (this.cgroup) await this.cgroup.remove().catch((e) => leftBehind(e, this.scratch && `the scratch dir ${this.scratch.dir} and its /workspace mount`));
      if (this.scratch) {
        await unmountWorkspace(this.scratch.workspace, this.unmountFlushMs).catch((e) => leftBehind(e, `the scratch dir ${this.scratch!.dir}`));
        // The image first, on a libuv thread: freeing its blocks is the slow part of the removal,
        // which walks fd by fd on the event loop (scratch.ts). It is the supervisor's own file
        // beside the workspace, never in the sandbox's view; unlink follows no link anyway.
        await unlink(join(this.scratch.dir, WORKSPACE_IMAGE)).catch(() => {});
        await removeTree(this.scratch.dir, this.host.runDir);
      }
    }
    // Only now: a run whose group could not be removed may still hold processes of that id.
    releaseHostId(this.hostId);
  }
}

/** A failed step of remove(), with what it leaves for gc named after it. */
function leftBehind(e: unknown, alsoLeft: string | null): never {
  throw new Error(`${(e as Error).message}${alsoLeft ? `; left for gc with it: ${alsoLeft}` : ''}`);
}
