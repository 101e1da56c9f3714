// One runtime interface (ContainerRuntime) over bubblewrap, runc and crun: plan a sandbox (pure),
// create it, start it, wait for it, kill it, destroy it; list and collect the ones pawl owns.
// The supervisor owns everything around it (cgroup, watch, classification, scratch dirs).
import type { ChildProcess } from 'node:child_process';
import type { CgroupLimits, RunCgroup } from '../cgroup/types.js';
import type { HostConfig } from '../config/host.js';
import type { Policy } from '../config/policy.js';
import type { OciSeccomp } from '../seccomp/index.js';
import type { Rlimits } from '../supervisor/shim.js';
import type { OciSpec } from './oci/config.js';

export type RuntimeName = 'bwrap' | 'runc' | 'crun';

export interface SandboxSpec {
  policy: Policy;
  /** Host path of pawl's read-only rootfs. */
  rootfs: string;
  /** Host dir bound read-write at /workspace. */
  workspace: string;
  /** argv inside the sandbox. */
  command: string[];
  /** The fd number, in the spawned process, holding the compiled seccomp BPF (null: no filter). */
  seccompFd: number | null;
  /**
   * bwrap --block-fd: an fd holding a one-byte file, which bwrap reads only once the sandbox is
   * fully set up (mounts, namespaces, chroot, privileges dropped), just before it loads the
   * filter and runs the program. Its offset, shared with the supervisor's own fd, is the
   * set-up record no program can forge: it never sees the fd (bwrap closes it). Absent: none.
   */
  readyFd?: number | null;
  /** bwrap --info-fd: where bwrap tells the host pid of the sandbox's init, so the supervisor can reap it. */
  infoFd?: number | null;
  /** Restricted network: host path of the run's egress proxy socket, bound at EGRESS_SOCKET. */
  egressSocket?: string | null;
  /** runc/crun: how the runtime reaches each opened mount source (fs/mounts.ts ociSourcePaths). */
  mountSources?: string[] | null;
}

export interface Launch {
  file: string;
  args: string[];
}

export interface RuntimeBackend {
  readonly name: RuntimeName;
  /** Pure: the command that starts the sandbox (run after the shim has entered the cgroup). */
  launch(spec: SandboxSpec): Launch;
}

/** What an OCI backend needs beyond the spec; facts of the host and the run, all plain data. */
export interface OciRunFacts {
  /** Container id (the run id). */
  id: string;
  /** The bundle dir: config.json and the (empty) root the sandbox is built on. */
  bundle: string;
  /** The run's cgroup relative to each hierarchy root, e.g. "/pawl/run-ID". */
  cgroupsPath: string;
  cgroupVersion: 'v1' | 'v2';
  /** Unprivileged host ids for the sandbox's uid/gid and for its root. */
  hostIds: { user: number; root: number };
  /** The host allows user namespaces. */
  userns: boolean;
  /** The seccomp layer's linux.seccomp, or null for no filter. */
  seccomp: OciSeccomp | null;
  /** The runtime's --root (its state dir for pawl's containers). */
  stateRoot: string;
  /** Hybrid host: the cgroup2 mount crun must not see (hidden in a private mount namespace). */
  hideUnified: string | null;
  /** fds 3.. of the spawned process passed into the container (task mode: 2, the harness protocol). */
  preserveFds: number;
}

export interface RuntimePlanInput {
  spec: SandboxSpec;
  limits: CgroupLimits;
  rlimits: Rlimits;
  /** Where the sandbox's first process must write its pid (bwrap's shim). */
  procsFiles: string[];
  /** Host id bwrap drops to (null: no drop). */
  hostId: number | null;
  /** The shim's per-run name in its error messages (bwrap). */
  shimTag?: string;
  /** runc/crun only. */
  oci: OciRunFacts | null;
}

export interface RuntimePlan {
  /** The runtime's own argv that creates the sandbox (bwrap: runs it). */
  runtime: Launch;
  /** What pawl spawns: bwrap through the shim; runc/crun create as is (or in crun's mount namespace). */
  spawn: Launch;
  /** runc/crun: the bundle's config.json, and the facts it was made from. */
  config: OciSpec | null;
  oci: OciRunFacts | null;
  /** bwrap: the spawned process's fd of the --info-fd report (null: none). */
  infoFd?: number | null;
}

/** How the sandboxed program ended: an exit code, or the signal that killed it. */
export interface SandboxExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CreateOptions {
  /** The spawned process's stdio: [stdin, stdout, stderr, ...fds 3+ passed into the sandbox]. */
  stdio: ('ignore' | 'inherit' | 'pipe' | number)[];
  /** The run's cgroup (created and filled with limits by the supervisor). */
  cgroup: RunCgroup;
}

/** One sandbox of one run, as a backend holds it. */
export interface RuntimeSandbox {
  /** The process pawl spawned; its stdio pipes are the sandbox's. */
  readonly child: ChildProcess;
  /** Let the program run (bwrap: already running; OCI: `start`). */
  start(): Promise<void>;
  /** Resolves when the sandbox's program has ended. */
  readonly exited: Promise<SandboxExit>;
  /** Resolves when every stdio pipe of the sandbox is closed. */
  readonly closed: Promise<void>;
  /** Host pid of the sandbox's program when the runtime knows it (OCI: the container init). */
  readonly initPid: number | null;
  /** Kill the sandbox's init (its pid namespace goes with it); the supervisor then kills the group. */
  kill(): Promise<void>;
  /** Release everything the runtime holds for it. Idempotent; called on every path. */
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
  /** Refuse (HostUnsupported, naming the package) when the backend cannot run on this host. */
  assertAvailable(): void;
  /** Pure: the argv and artifacts of one run (what `pawl explain` prints). */
  plan(i: RuntimePlanInput): RuntimePlan;
  /** Create the sandbox from its plan; the program does not run before start(). */
  create(plan: RuntimePlan, opts: CreateOptions): Promise<RuntimeSandbox>;
  /** The sandboxes of this backend that pawl owns under this host config. */
  list(host: HostConfig): Promise<SandboxInfo[]>;
  /** Destroy one of them, whatever its state (gc decides which: supervisor/gc.ts). */
  remove(host: HostConfig, sandbox: SandboxInfo): Promise<void>;
}
