// One runtime interface: a backend turns a sandbox spec into the command that starts it.
// The supervisor owns everything around it (cgroup, shim, fds, watch, reap).
import type { Policy } from '../config/policy.js';

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
}

export interface Launch {
  file: string;
  args: string[];
}

export interface RuntimeBackend {
  readonly name: 'bwrap' | 'runc' | 'crun';
  /** Pure: the command that starts the sandbox (run after the shim has entered the cgroup). */
  launch(spec: SandboxSpec): Launch;
}
