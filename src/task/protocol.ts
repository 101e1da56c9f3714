// The harness protocol: the supervisor writes one TaskRequest to the sandbox's fd 3 and closes
// it; the harness answers one HarnessReply on fd 4. Never stdout: the task may write there.
// A sandbox can therefore be started before its task is known (the harness blocks on fd 3).

// A const enum is inlined by tsc, so the harness (copied alone into the rootfs) imports nothing.
export const enum Fd {
  Request = 3,
  Reply = 4,
}

export interface TaskRequest {
  /** main.js source: an anonymous function expression or a declaration named main. */
  source: string;
  filename: string;
  input: unknown;
  context: { executionId: string; [k: string]: unknown };
  /** Network mode, so a blocked fetch can say why. */
  network: 'none' | 'restricted' | 'full';
  /**
   * Network mode 'restricted': path INSIDE the sandbox of a unix socket speaking HTTP/1.1
   * CONNECT host:port (for http and https alike); the harness's fetch and node's
   * http/https/global fetch tunnel through it.
   */
  egressProxy?: string;
}

export interface Violation {
  kind: 'network' | 'filesystem' | 'syscall';
  detail: string;
}

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  status?: number;
  path?: string;
  syscall?: string;
}

export type HarnessReply =
  | { ok: true; output: unknown; violations: Violation[] }
  | { ok: false; stage: 'load' | 'run' | 'output'; error: SerializedError; violations: Violation[] };
