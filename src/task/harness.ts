// The in-sandbox harness: node /opt/pawl/harness.mjs. It is copied alone into the rootfs, so it
// imports only node builtins (the protocol's const enum is inlined by tsc).
// It reads one TaskRequest from fd 3, runs the Ratchet task function and writes one reply to
// fd 4. Input/output schema validation happens on the host, where the task cannot tamper with it.
import { readFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { runInThisContext } from 'node:vm';
import { Fd, type HarnessReply, type SerializedError, type TaskRequest, type Violation } from './protocol.js';

const violations: Violation[] = [];
let network: TaskRequest['network'] = 'none';

// Ratchet's error constructors: each sets name and message; HttpError also status.
function defineError(name: string) {
  const E = class extends Error {
    constructor(message?: string) {
      super(message);
      this.name = name;
    }
  };
  Object.defineProperty(E, 'name', { value: name });
  return E;
}
class HttpError extends Error {
  constructor(readonly status: number, message?: string) {
    super(message);
    this.name = 'HttpError';
  }
}
const NetworkError = defineError('NetworkError');
const ratchetGlobals: Record<string, unknown> = {
  AuthenticationError: defineError('AuthenticationError'),
  AuthorizationError: defineError('AuthorizationError'),
  NetworkError,
  HttpError,
  ValidationError: defineError('ValidationError'),
  ConfigurationError: defineError('ConfigurationError'),
  RateLimitError: defineError('RateLimitError'),
  ServiceUnavailableError: defineError('ServiceUnavailableError'),
  TimeoutError: defineError('TimeoutError'),
  DataError: defineError('DataError'),
};

function installGlobals(req: TaskRequest): void {
  // Ratchet's fetch is synchronous. Until the network layer provides an egress path, every call
  // is refused here, recorded as a violation, and surfaces as a NetworkError the task can catch.
  const fetch = (url: unknown) => {
    const detail = `fetch ${String(url)} (network mode ${req.network})`;
    violations.push({ kind: 'network', detail });
    throw new NetworkError(`network access is blocked by policy: ${detail}`);
  };
  // Ratchet tasks need no modules; `require` gives other JavaScript the node builtins (the
  // rootfs holds no other modules).
  Object.assign(globalThis, ratchetGlobals, { fetch, require: createRequire('/opt/pawl/') });
}

/** Both Ratchet shapes: `function(input) {...}` and `function main(input, context) {...}`. */
function compile(source: string, filename: string): (input: unknown, context: unknown) => unknown {
  const expr = source.trim().replace(/;\s*$/, '');
  try {
    const fn: unknown = runInThisContext(`(${expr}\n)`, { filename });
    if (typeof fn === 'function') return fn as never;
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
  }
  runInThisContext(source, { filename });
  const main = (globalThis as { main?: unknown }).main;
  if (typeof main !== 'function') throw new TypeError(`${filename} defines no task function: expected "function(input) {...}" or "function main(input, context) {...}"`);
  return main as never;
}

const NETWORK_CODES = new Set(['ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNREFUSED', 'EHOSTUNREACH']);
const FS_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);

function serialize(e: unknown): SerializedError {
  if (!(e instanceof Error)) return { name: 'Error', message: `non-Error thrown: ${safeString(e)}` };
  const err = e as Error & { code?: unknown; status?: unknown; path?: unknown; syscall?: unknown };
  const out: SerializedError = { name: err.name, message: err.message };
  // The task's frames only: the harness and node internals are noise to the task's author.
  if (err.stack) out.stack = err.stack.split('\n').filter((l) => !/harness\.mjs|node:internal|^\s+at async/.test(l)).slice(0, 12).join('\n');
  if (typeof err.code === 'string') out.code = err.code;
  if (typeof err.status === 'number') out.status = err.status;
  if (typeof err.path === 'string') out.path = err.path;
  if (typeof err.syscall === 'string') out.syscall = err.syscall;
  // Errors the sandbox caused are violations: the report names what was blocked.
  // EPERM with no path is a refused system call (the seccomp filter answers EPERM for denied ones).
  if (out.code === 'EPERM' && !out.path && out.syscall) violations.push({ kind: 'syscall', detail: `${out.syscall}: EPERM` });
  if (out.code && FS_CODES.has(out.code) && out.path) violations.push({ kind: 'filesystem', detail: `${out.syscall ?? 'access'} ${out.path}: ${out.code}` });
  if (out.code && NETWORK_CODES.has(out.code) && network !== 'full') violations.push({ kind: 'network', detail: `${out.syscall ?? 'connect'}: ${out.code}` });
  return out;
}

function safeString(v: unknown): string {
  try {
    return typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

let replied = false;

/** Send the one reply, then exit. Later calls (a timer throwing after the task returned) are ignored. */
function reply(r: HarnessReply): void {
  if (replied) return;
  replied = true;
  let line: string;
  try {
    line = JSON.stringify(r);
  } catch (e) {
    line = JSON.stringify({ ok: false, stage: 'output', error: { name: 'TypeError', message: `output is not JSON-serialisable: ${(e as Error).message}` }, violations });
  }
  const buf = Buffer.from(`${line}\n`);
  for (let off = 0; off < buf.length; ) off += writeSync(Fd.Reply, buf, off);
  // Exit only once the task's own output has reached its pipes: node may still hold stdout or
  // stderr writes in user space, and process.exit() would drop them.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(0)));
}

async function main(): Promise<void> {
  const req = JSON.parse(readFileSync(Fd.Request, 'utf8')) as TaskRequest;
  network = req.network;
  installGlobals(req);
  let fn;
  try {
    fn = compile(req.source, req.filename);
  } catch (e) {
    return reply({ ok: false, stage: 'load', error: serialize(e), violations });
  }
  try {
    const output = await fn(req.input, req.context);
    reply({ ok: true, output: output === undefined ? null : output, violations });
  } catch (e) {
    reply({ ok: false, stage: 'run', error: serialize(e), violations });
  }
}

// A rejection nobody awaited, or a throw in a timer callback, still ends the task as its error.
process.on('unhandledRejection', (e) => reply({ ok: false, stage: 'run', error: serialize(e), violations }));
process.on('uncaughtException', (e) => reply({ ok: false, stage: 'run', error: serialize(e), violations }));
void main();
