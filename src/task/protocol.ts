// The harness protocol: the supervisor writes one TaskRequest to the sandbox's fd 3 (ended by
// RequestEnd) and closes it; the harness answers one HarnessReply on fd 4. Never stdout: the task may write there.
// A sandbox can therefore be started before its task is known (the harness blocks on fd 3).
import type { NetworkPolicy } from '../config/policy.js';

// A const enum is inlined by tsc, so the harness (copied alone into the rootfs) imports nothing.
export const enum Fd {
  Request = 3,
  Reply = 4,
}

/**
 * The harness's first byte on fd 4, once node has booted and it waits for its request: the
 * supervisor then writes the run's CPU quota, and only then the request (CgroupLimits.cpuAtDispatch).
 * No code of the task has run when it is written (the task comes with the request).
 */
export const enum Ready {
  Byte = 0x06,
}

/**
 * The byte after a single-use request: the harness reads up to it instead of waiting for the
 * pipe's end, which the supervisor's event loop sends only once it has finished what it is doing
 * (measured: ~1.3 ms of every pooled run's dispatch). JSON.stringify never writes a raw control
 * character. A request that ends at EOF without it (bench, tests) still counts.
 */
export const enum RequestEnd {
  Byte = 0x04,
}

export interface TaskRequest {
  /** The task file's source, in any shape the harness accepts (README: Ratchet tasks). */
  source: string;
  filename: string;
  input: unknown;
  context: { executionId: string; [k: string]: unknown };
  /** Network mode, so a blocked fetch can say why. */
  network: NetworkPolicy['mode'];
  /** The function to call, when the task's metadata names one (meta.yaml `entrypoint`). */
  entry?: string;
  /**
   * A test case's `mock.http`: fetch is then answered ONLY from these (URL contains `url`, method
   * equal, case-insensitive); an unmatched call is a NetworkError; a mocked run never opens a socket.
   */
  mocks?: { url: string; method: string; response: unknown }[];
  /** Network mode 'restricted': path inside the sandbox of a unix socket speaking HTTP CONNECT. */
  egressProxy?: string;
  /** Reuse mode (src/pool/reuse.ts): the run's number in its sandbox, echoed in its ReuseReply. */
  run?: number;
  /** Reuse mode: the most of each stream's output a run's reply carries (the rest is counted). */
  outputMax?: { stdout: number; stderr: number };
}

/** Reuse mode: one line on fd 4 per run; its console output travels with it. */
export interface ReuseReply {
  run: number;
  reply: HarnessReply;
  stdout: string;
  stderr: string;
  stdoutDropped: number;
  stderrDropped: number;
}

// The reply's types are inferred from the schemas the supervisor checks it with (reply.ts).
import type { HarnessReply } from './reply.js';
export type { HarnessReply, SerializedError, Violation } from './reply.js';
