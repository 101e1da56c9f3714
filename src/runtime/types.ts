// One runtime interface over bubblewrap, runc and crun. A backend owns everything that is its
// own: the facts it reads from the host, how it renders the plan (plan/), the fds and stdio of
// what it spawns, and how it tells a set-up failure from the program's own end. The run code
// (supervisor/) drives any backend through this interface and never names one.
import type { Readable, Writable } from 'node:stream';
import type { RunCgroup } from '../cgroup/types.js';
import type { HostConfig } from '../config/host.js';
import type { RuntimeName } from '../config/policy.js';
import type { SandboxPlan } from '../plan/plan.js';

export type { RuntimeName } from '../config/policy.js';

export interface Launch {
  file: string;
  args: string[];
}

/** Where one run lives on the host: made by the run's prepare phase, handed to the backend. */
export interface RunSite {
  /** The run id (and OCI container id). */
  id: string;
  host: HostConfig;
  /** The run's scratch dir (OCI: the bundle). */
  dir: string;
  cgroupName: string;
  /** The run's cgroup.procs files (bwrap: the shim enters each before anything runs). */
  procsFiles: string[];
  /** The run's unprivileged host id (null: pawl is not root and keeps its own ids). */
  hostId: number | null;
  /** A per-run secret a backend may put in its own messages, which the sandbox never sees and so cannot forge (explain: "SECRET"). */
  secret: string;
  /**
   * The layout's `source` mounts, opened by the supervisor without following links (fs/mounts.ts):
   * `fds` in slot order (bwrap binds them: --bind-fd), and for runc/crun `staged`, a path of
   * pawl's own bound to each (what config.json names). Absent (explain): placeholders.
   */
  sources?: { fds: number[]; staged: string[] | null };
}

/** A plan rendered for one backend, not yet running: what `pawl explain` prints, and create(). */
export interface Prepared {
  /** The runtime's own argv (bwrap's argv; runc/crun create). */
  runtime: Launch;
  /** What pawl spawns (bwrap through the shim; crun inside its mount namespace on hybrid hosts). */
  spawn: Launch;
  /** The runtime's config file (runc/crun: config.json), or null. */
  config: object | null;
  /** How this backend makes the sandbox's `/` (explain's first mount line). */
  root: string;
  /** Create the sandbox; the program does not run before start(). */
  create(io: CreateOptions): Promise<RuntimeSandbox>;
}

export interface CreateOptions {
  /** The sandbox's stdin: nothing, or this process's. */
  stdin: 'ignore' | 'inherit';
  /** The run's cgroup (created and filled with limits by the run). */
  cgroup: RunCgroup;
}

/** How the sandboxed program ended: an exit code, or the signal that killed it. */
export interface SandboxExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One sandbox of one run, as a backend holds it. */
export interface RuntimeSandbox {
  /** The spawned process's pid (bwrap: the shim, which execs bwrap). */
  readonly pid: number | undefined;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Task mode: the harness's request (fd 3 inside) and reply (fd 4) pipes. */
  readonly request: Writable | null;
  readonly reply: Readable | null;
  /**
   * Let the program run (bwrap: already running; OCI: `start`). Never throws for a sandbox that
   * could not be set up: setupFailure() says so after the end.
   */
  start(): Promise<void>;
  /** Resolves when the sandbox's program has ended (at once when set-up failed). */
  readonly exited: Promise<SandboxExit>;
  /** Resolves when every stdio pipe of the sandbox is closed. */
  readonly closed: Promise<void>;
  /** Host pid of the sandbox's program when the runtime knows it (OCI: the container init). */
  readonly initPid: number | null;
  /** A pid whose fresh audit session marks the run's processes (bwrap: the shim), or null. */
  readonly auditPid: number | null;
  /** An exit signal is the program's own, seen by waitpid (OCI init), not the runtime's. */
  readonly signalIsProgram: boolean;
  /** After the end: the sandbox was never fully set up, so no program of the task ran. */
  setupFailed(): boolean;
  /** The runtime's own account of a failed set-up where it is not on stderr (OCI: its log). */
  readonly setupError: string | null;
  /** Kill the sandbox's init (its pid namespace goes with it); the run then kills the group. */
  kill(): Promise<void>;
  /**
   * SIGKILL the sandbox's pid-namespace init now, if it is known and still that process: the
   * kernel kills every process of the namespace with it, at once. False when it cannot (not known
   * yet, or already gone): the group kill then freezes the group first (RunCgroup KillOptions).
   */
  killNamespace(): boolean;
  /** Release everything the runtime holds for it (fds, state). Idempotent; called on every path. */
  destroy(): Promise<void>;
}

export interface SandboxInfo {
  /** The run id (and OCI container id). */
  id: string;
  runtime: RuntimeName;
  /** created | running | stopped as the runtime says; bwrap: running while its group has processes. */
  state: string;
  ageMs: number;
  /** The supervisor that started it. */
  owner: number | null;
  /** The sandbox's init (OCI), when the runtime knows it. */
  pid: number | null;
}

export interface ContainerRuntime {
  readonly name: RuntimeName;
  /** The runtime keeps state of its own (runc/crun containers) that gc must delete. */
  readonly keepsState: boolean;
  /** Refuse (HostUnsupported, naming the package) when the backend cannot run on this host. */
  assertAvailable(): void;
  /** Read this backend's facts for the run and render the plan (no side effects: explain uses it). */
  prepare(plan: SandboxPlan, site: RunSite): Promise<Prepared>;
  /** The sandboxes of this backend that pawl owns under this host config. */
  list(host: HostConfig): Promise<SandboxInfo[]>;
  /** Destroy one of them, whatever its state (gc decides which: supervisor/gc.ts). */
  remove(host: HostConfig, sandbox: SandboxInfo): Promise<void>;
}
