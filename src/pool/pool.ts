// A warm pool of single-use task sandboxes. Each is started ahead of demand for one policy key
// (the whole resolved policy: runtime, trust level, limits, network, env, binds), so it is already
// in its fresh cgroup with node and the harness loaded, blocked on fd 3. A task is dispatched into
// one (send), the run ends, the sandbox is destroyed like any run's, and the pool refills in the
// background. No state survives between tasks: a sandbox is given exactly one task, ever.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostConfig, type HostConfig } from '../config/host.js';
import type { Policy } from '../config/policy.js';
import { PawlError } from '../errors.js';
import { assertSupported } from '../supervisor/host.js';
import type { RunResult } from '../supervisor/result.js';
import { dispatchTask, prepareTaskRun, taskPolicy, type RunTaskOptions } from '../supervisor/run.js';
import { Sandbox } from '../supervisor/sandbox.js';
import { BACKGROUND_UNMOUNT_FLUSH_MS } from '../supervisor/workspace-fs.js';
import { loadTask, type LoadedTask } from '../task/load.js';
import { PoolConfig, type PoolConfigInput } from './config.js';
import { published } from '../supervisor/phases/observers.js';
import { withDeadline } from '../util/wait.js';
import { assertReusable, reusePolicy, ReuseSession, taskKey } from './reuse.js';

interface Slot {
  sb: Sandbox;
  key: Key;
  state: 'idle' | 'busy' | 'gone';
  expiry?: NodeJS.Timeout;
  /** Reuse mode: the runs this sandbox has had (it is given back to the pool between them). */
  session?: ReuseSession;
}

interface Key {
  id: string;
  policy: Policy;
  idle: Slot[];
  starting: number;
  /** Started, node still booting: parked once the harness waits on fd 3. */
  booting: number;
  lastUsed: number;
  failedAt: number;
  /** Sandboxes of this key from their start to the end of their teardown. */
  slots: number;
}

interface Waiter {
  key: Key;
  resolve: (slot: Slot) => void;
  reject: (e: unknown) => void;
}

const READY_MS = 30_000;

export interface PoolStats {
  /** Sandboxes that exist now (starting, idle, running or being destroyed). */
  live: number;
  /** The most that ever existed at once: never above maxConcurrent. */
  peakLive: number;
  idle: number;
  queued: number;
  /** Policies (and in reuse mode, tasks) the pool keeps sandboxes for: forgotten once unused for idleMs and empty. */
  keys: number;
  started: number;
  /** Tasks that found a warm sandbox waiting. */
  warmHits: number;
  /** Idle sandboxes found dead (and replaced), expired, or destroyed to make room. */
  diedIdle: number;
  expired: number;
  evicted: number;
  /** Sandboxes whose teardown left something behind (each on the leftover list, for gc). */
  teardownFailures: number;
}

/** What a pool reports besides its results. */
export interface PoolEvents {
  /**
   * A sandbox's teardown, which ends after its result was handed back, left something behind
   * (it is on the leftover list that gc retries). Default: one JSON line on stderr.
   */
  teardownFailed?: (failure: { id: string; error: string }) => void;
}

function logTeardownFailure(f: { id: string; error: string }): void {
  process.stderr.write(`${JSON.stringify({ event: 'teardown_failed', ...f })}\n`);
}

/** The pool key of a policy: equal keys mean interchangeable sandboxes. */
export function policyKey(policy: Policy): string {
  return createHash('sha256').update(JSON.stringify(policy)).digest('hex').slice(0, 32);
}

/**
 * The harness has booted and waits for its task (its ready byte: Sandbox.whenBooted), within
 * limitMs. Only such a sandbox is parked as idle, so a dispatch never waits for node to boot.
 */
async function whenReady(sb: Sandbox, limitMs: number): Promise<boolean> {
  return (await withDeadline(sb.whenBooted(), limitMs)) === true;
}

/** A process that has exited but not been reaped yet still answers kill(pid, 0): read its state. */
function processAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export class Pool {
  readonly config: PoolConfig;
  private readonly keys = new Map<string, Key>();
  private readonly queue: Waiter[] = [];
  private live = 0;
  private closed = false;
  private idleCount = 0;
  private readonly drainedWaiters: (() => void)[] = [];
  private readonly counters = { peakLive: 0, started: 0, warmHits: 0, diedIdle: 0, expired: 0, evicted: 0, teardownFailures: 0 };
  private readonly events: Required<PoolEvents>;

  constructor(config: PoolConfigInput = {}, readonly host: HostConfig = hostConfig(), events: PoolEvents = {}) {
    this.config = PoolConfig.parse(config);
    this.events = { teardownFailed: events.teardownFailed ?? logTeardownFailure };
  }

  stats(): PoolStats {
    return { live: this.live, idle: this.idleCount, queued: this.queue.length, keys: this.keys.size, ...this.counters };
  }

  /** Keep `size` sandboxes of this policy started (refused policies throw here, not later). */
  warm(policy: Policy): void {
    assertSupported(policy);
    this.keyFor(policy).lastUsed = Date.now();
    this.refill();
  }

  /** Warm sandboxes for a task as it will be run with these options (its own limits are part of the key). */
  async warmTask(task: string | LoadedTask, opts: Pick<RunTaskOptions, 'trustLevel' | 'policy'> = {}): Promise<Policy> {
    const loaded = typeof task === 'string' ? await loadTask(task, { tests: false }) : task;
    const policy = taskPolicy(loaded, opts);
    if (!this.config.reuse) this.warm(policy);
    else {
      assertReusable(policy);
      assertSupported(policy);
      this.keyFor(reusePolicy(policy, this.config.reuse.maxRuns), taskKey(loaded)).lastUsed = Date.now();
      this.refill();
    }
    return policy;
  }

  /** Idle sandboxes ready now for this policy. */
  idleFor(policy: Policy): number {
    return this.keys.get(policyKey(policy))?.idle.length ?? 0;
  }

  /** Run a task in a pooled sandbox: the same result as runTask, minus the start-up wait. */
  async run(task: string | LoadedTask, opts: RunTaskOptions = {}): Promise<RunResult> {
    if (this.closed) throw new PawlError('RuntimeError', 'the pool is closed');
    const prepared = await prepareTaskRun(task, opts);
    if ('rejected' in prepared) return prepared.rejected;
    const { loaded, policy, input } = prepared;
    if (this.config.reuse) return this.runReused(loaded, policy, input, opts);
    const slot = await this.acquire(this.keyFor(policy), opts.signal);
    const cancel = () => void slot.sb.kill('cancelled');
    opts.signal?.addEventListener('abort', cancel, { once: true });
    // The result is handed back as soon as it is final; the teardown goes on in the background
    // and the slot counts against the cap until it has ended (close() waits for it).
    let teardown: Promise<string | null> | null = null;
    try {
      if (opts.signal?.aborted) cancel();
      return await dispatchTask(slot.sb, loaded, policy, input, opts.context, opts.mocks, (t) => (teardown = t.then((d) => d.error)));
    } finally {
      opts.signal?.removeEventListener('abort', cancel);
      this.tearDown(slot, teardown ?? slot.sb.result().then((r) => r.cleanup_error ?? null, () => null));
      // After the result has gone back: a new sandbox's start does work at once (~0.5-1 ms here).
      setImmediate(() => this.refill());
    }
  }

  /**
   * Reuse mode: a sandbox of this task and policy that has had fewer than maxRuns runs, or a
   * fresh one; given back to the pool after the run unless the run ended it or used it up.
   */
  private async runReused(loaded: LoadedTask, policy: Policy, input: unknown, opts: RunTaskOptions): Promise<RunResult> {
    assertReusable(policy);
    const { maxRuns } = this.config.reuse!;
    const slot = await this.acquire(this.keyFor(reusePolicy(policy, maxRuns), taskKey(loaded)), opts.signal);
    const session = (slot.session ??= new ReuseSession(slot.sb, this.host));
    const cancel = () => void slot.sb.kill('cancelled');
    opts.signal?.addEventListener('abort', cancel, { once: true });
    try {
      if (opts.signal?.aborted) cancel();
      return published(await session.run(loaded, policy, input, opts.context, opts.mocks), { task: loaded.policyName, label: loaded.name, policy });
    } finally {
      opts.signal?.removeEventListener('abort', cancel);
      if (!session.spoiled && session.runs < maxRuns && !this.closed && processAlive(slot.sb.pid)) {
        slot.state = 'idle';
        this.park(slot);
      } else {
        this.tearDown(slot, session.end());
      }
    }
  }

  /** Destroy every idle sandbox, refuse waiting tasks, and wait for running ones to end. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.queue.splice(0)) w.reject(new PawlError('RuntimeError', 'the pool was closed'));
    for (const key of this.keys.values()) for (const slot of key.idle.splice(0)) this.destroy(slot);
    if (this.live > 0) await new Promise<void>((resolve) => this.drainedWaiters.push(resolve));
  }

  private keyFor(policy: Policy, task?: string): Key {
    const id = task ? `${policyKey(policy)}:${task}` : policyKey(policy);
    let key = this.keys.get(id);
    if (!key) this.keys.set(id, (key = { id, policy, idle: [], starting: 0, booting: 0, lastUsed: Date.now(), failedAt: 0, slots: 0 }));
    return key;
  }

  private acquire(key: Key, signal?: AbortSignal): Promise<Slot> {
    key.lastUsed = Date.now();
    if (this.queue.length === 0) {
      const slot = this.takeIdle(key);
      if (slot) {
        this.counters.warmHits++;
        // The replacement boots after this run's result when a warm sandbox is still waiting:
        // node's boot beside the dispatch (2 cores) made the run's reply and reap slower
        // (measured: pooled trivial run 29-45 -> 23-28 ms). The last warm one goes: at once.
        if (key.idle.length === 0) this.refill();
        return Promise.resolve(slot);
      }
    }
    if (this.queue.length >= this.config.maxQueue) {
      return Promise.reject(new PawlError('RuntimeError', `the pool's queue is full (${this.config.maxQueue} tasks waiting)`));
    }
    return new Promise<Slot>((resolve, reject) => {
      const waiter: Waiter = { key, resolve, reject };
      this.queue.push(waiter);
      signal?.addEventListener('abort', () => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) {
          this.queue.splice(i, 1);
          reject(new PawlError('RuntimeError', 'cancelled while waiting for a sandbox'));
        }
      }, { once: true });
      this.pump();
    });
  }

  /** A live idle sandbox of this key, or null. Dead ones met on the way are reaped, never used. */
  private takeIdle(key: Key): Slot | null {
    while (key.idle.length) {
      const slot = key.idle.shift()!;
      this.idleCount--;
      clearTimeout(slot.expiry);
      if (slot.state !== 'idle' || slot.session?.spoiled || !processAlive(slot.sb.pid)) {
        this.counters.diedIdle++;
        this.destroy(slot);
        continue;
      }
      slot.state = 'busy';
      return slot;
    }
    return null;
  }

  /** Serve waiting tasks in order: a warm sandbox, else a fresh one while under the cap. */
  private pump(): void {
    while (this.queue.length) {
      const w = this.queue[0]!;
      const slot = this.takeIdle(w.key);
      if (slot) {
        this.queue.shift();
        w.resolve(slot);
        continue;
      }
      if (this.live < this.config.maxConcurrent) {
        this.queue.shift();
        this.start(w.key).then((s) => {
          s.state = 'busy';
          w.resolve(s);
        }, w.reject);
        continue;
      }
      // At the cap: idle sandboxes of other keys make room (each frees its slot once destroyed).
      if (!this.evictIdle()) break;
    }
    if (this.queue.length === 0) this.refill();
  }

  private evictIdle(): boolean {
    for (const key of this.keys.values()) {
      const slot = key.idle.shift();
      if (slot) {
        this.idleCount--;
        clearTimeout(slot.expiry);
        this.counters.evicted++;
        this.destroy(slot);
        return true;
      }
    }
    return false;
  }

  /** Top each recently used key up to `size` in the background, leaving room for the queue. */
  private refill(): void {
    if (this.closed || this.queue.length) return;
    const now = Date.now();
    this.prune(now);
    for (const key of this.keys.values()) {
      if (now - key.lastUsed > this.config.idleMs || now - key.failedAt < this.config.retryMs) continue;
      while (key.idle.length + key.starting + key.booting < this.config.size && this.live < this.config.maxConcurrent) {
        this.start(key).then(async (slot) => {
          key.booting++;
          const ready = await whenReady(slot.sb, READY_MS);
          key.booting--;
          if (ready) return this.park(slot);
          // Not ready within the limit (or dead): destroyed, and the key rests like a failed start.
          key.failedAt = Date.now();
          this.destroy(slot);
        }, () => {});
      }
    }
  }

  /**
   * Forget keys unused for idleMs that hold no sandbox and no waiting task: each holds its whole
   * policy (env included), and a service whose callers send many policies would keep them all.
   */
  private prune(now: number): void {
    for (const [id, key] of this.keys) {
      if (key.slots === 0 && now - key.lastUsed > this.config.idleMs && !this.queue.some((w) => w.key === key)) this.keys.delete(id);
    }
  }

  /** Start one sandbox of this key; counts against the cap from now until it is destroyed. */
  private async start(key: Key): Promise<Slot> {
    this.live++;
    this.counters.peakLive = Math.max(this.counters.peakLive, this.live);
    key.starting++;
    key.slots++;
    try {
      // Single use: the run ends at the harness's reply (Sandbox.endOrReply); reuse mode reads the replies itself.
      // Its teardown runs after the result has gone back: it may wait longer for a busy disk's
      // writeback than a run whose result waits for it before leaving it to gc.
      const sb = await Sandbox.start({ policy: key.policy, host: this.host, mode: 'task', endAtReply: !this.config.reuse, unmountFlushMs: BACKGROUND_UNMOUNT_FLUSH_MS });
      this.counters.started++;
      const slot: Slot = { sb, key, state: 'idle' };
      // Died while idle (killed, OOM at start, runtime failure): out of the pool, reaped, replaced.
      void sb.ended.then(() => {
        if (slot.state !== 'idle') return;
        const i = key.idle.indexOf(slot);
        if (i >= 0) {
          key.idle.splice(i, 1);
          this.idleCount--;
          clearTimeout(slot.expiry);
          this.counters.diedIdle++;
          this.destroy(slot);
        }
      });
      return slot;
    } catch (e) {
      key.failedAt = Date.now();
      key.slots--;
      this.released();
      throw e;
    } finally {
      key.starting--;
    }
  }

  private park(slot: Slot): void {
    if (this.closed || slot.state !== 'idle') return this.destroy(slot);
    // A reuse sandbox that has run the task goes first: its next run finds node's caches warm.
    if (slot.session) slot.key.idle.unshift(slot);
    else slot.key.idle.push(slot);
    this.idleCount++;
    slot.expiry = setTimeout(() => {
      const i = slot.key.idle.indexOf(slot);
      if (i < 0) return;
      slot.key.idle.splice(i, 1);
      this.idleCount--;
      this.counters.expired++;
      this.destroy(slot);
    }, this.config.idleMs);
    slot.expiry.unref();
    this.pump();
  }

  /** An unused sandbox: end it and reap it like any run (cgroup and scratch removed). */
  private destroy(slot: Slot): void {
    if (slot.state === 'gone') return;
    slot.state = 'gone';
    if (slot.session) return this.tearDown(slot, slot.session.end());
    void slot.sb.kill('cancelled').catch(() => {});
    this.tearDown(slot, slot.sb.result().then((r) => r.cleanup_error ?? null, () => null));
  }

  /**
   * A sandbox's teardown (its group, /workspace mount and scratch dir removed: Sandbox.settled)
   * in progress: its slot is free once that has ended. What could not be removed is on the
   * leftover list already; it is also counted and reported (teardownFailed).
   */
  private tearDown(slot: Slot, teardown: Promise<string | null>): void {
    slot.state = 'gone';
    void teardown.then((error) => {
      if (!error) return;
      this.counters.teardownFailures++;
      try {
        this.events.teardownFailed({ id: slot.sb.id, error });
      } catch {
        /* a reporter's own problem */
      }
    }).finally(() => {
      slot.key.slots--;
      this.released();
    });
  }

  private released(): void {
    this.live--;
    if (this.live === 0) for (const r of this.drainedWaiters.splice(0)) r();
    this.pump();
  }
}
