// The in-sandbox harness: node /opt/pawl/harness.cjs (the build's CommonJS copy of this module:
// scripts/bundle-cli.mjs bundleHarness). It is copied alone into the rootfs, so it imports only
// node builtins (the protocol's const enum is inlined by tsc).
// It reads one TaskRequest from fd 3, finds the task function in whatever shape the file has,
// runs it and writes one reply to fd 4. Input/output schema validation happens on the host,
// where the task cannot tamper with it. The same file is also the fetch worker thread (bottom).
import { closeSync, readSync, writeSync } from 'node:fs';
import type * as Http from 'node:http';
import type * as Https from 'node:https';
import { createRequire } from 'node:module';
import type * as Net from 'node:net';
import type { Duplex } from 'node:stream';
import type * as Tls from 'node:tls';
import { createContext, Script } from 'node:vm';
import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { types } from 'node:util';
import type * as WorkerThreads from 'node:worker_threads';
import { ReplyLimit } from './reply-limits.js';
import { Fd, Ready, RequestEnd, type HarnessReply, type ReuseReply, type SerializedError, type TaskRequest, type Violation } from './protocol.js';

// node's HTTP and TLS stacks load on first use: a task that makes no request does not pay for
// them at start-up (they cost milliseconds against a start of a few tens).
const load = createRequire(import.meta.url);
const http = () => load('node:http') as typeof Http;
const https = () => load('node:https') as typeof Https;
const net = () => load('node:net') as typeof Net;
const tls = () => load('node:tls') as typeof Tls;
const threads = () => load('node:worker_threads') as typeof WorkerThreads;
/** This file's path: its own frames are left out of a task error's stack. */
const SELF = new URL(import.meta.url).pathname;
/** The fetch worker is this file again, told apart by this argument. */
const WORKER_ARG = '--pawl-fetch-worker';

const violations: Violation[] = [];
/** Violations past what a reply may list: counted, named in its last entry (replyViolations). */
let unlisted = 0;
let network: TaskRequest['network'] = 'none';

/** Text cut to a reply's limit for it (ReplyLimit), saying how long it was. */
function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  const note = `... (${s.length} characters)`;
  return s.slice(0, Math.max(0, max - note.length)) + note;
}

/** A violation for the reply; past its limit, only counted. */
function report(kind: Violation['kind'], detail: string): void {
  if (violations.length < ReplyLimit.Violations - 1) violations.push({ kind, detail: clip(detail, ReplyLimit.Detail) });
  else unlisted++;
}

/** The run's violations as a reply lists them: at most ReplyLimit.Violations, the last one counting the rest. */
function replyViolations(): Violation[] {
  if (unlisted === 0) return violations;
  return [...violations, { kind: violations.at(-1)?.kind ?? 'network', detail: `and ${unlisted} more violation(s) not listed` }];
}

// ---- Ratchet's error constructors: each sets name and message; HttpError also status. --------

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
const TimeoutError = defineError('TimeoutError');
const AuthenticationError = defineError('AuthenticationError');
const AuthorizationError = defineError('AuthorizationError');
const RateLimitError = defineError('RateLimitError');
const ServiceUnavailableError = defineError('ServiceUnavailableError');
const ratchetGlobals: Record<string, unknown> = {
  AuthenticationError, AuthorizationError, NetworkError, HttpError, ValidationError: defineError('ValidationError'),
  ConfigurationError: defineError('ConfigurationError'), RateLimitError, ServiceUnavailableError, TimeoutError, DataError: defineError('DataError'),
};
/** A file whose task function cannot be found: the reply's error name, which the host maps to InvalidTask. */
const InvalidTask = defineError('InvalidTask');

// ---- Task shapes ------------------------------------------------------------------------------

type TaskFn = (input: unknown, context: unknown) => unknown;

/**
 * Where a task's code runs: this process's own global (single use), or a fresh node:vm context
 * per run (reuse mode, src/pool/reuse.ts), so one run's globals are not the next one's.
 */
interface Realm {
  global: Record<string, unknown>;
  run(script: Script): unknown;
}
const thisRealm: Realm = { global: globalThis as Record<string, unknown>, run: (s) => s.runInThisContext() };
const isFn = (v: unknown): v is TaskFn => typeof v === 'function' && !/^class\b/.test(Function.prototype.toString.call(v));

/**
 * Compile the file as a script (declarations, CommonJS exports, a parenthesised expression), or,
 * when that is a syntax error, as one expression (`function(input) {...}` is not a statement).
 * Compiling runs nothing, so the task's top-level code runs exactly once, in the chosen form.
 */
function compile(source: string, filename: string): { expression: boolean; script: Script } {
  // Ratchet's own shape, `function(input) {...}`, is never a script (an anonymous function is no
  // statement): compiled as the expression first, it skips the failed script compile and its
  // SyntaxError (~0.4 ms of a run). Anything else, or an expression that does not compile, goes
  // the general way below, with the same errors as ever.
  if (ANONYMOUS_FUNCTION.test(source)) {
    try {
      return { expression: true, script: new Script(`(${source.trim().replace(/;\s*$/, '')}\n)`, { filename }) };
    } catch {
      /* the general way */
    }
  }
  let scriptError: SyntaxError;
  try {
    return { expression: false, script: new Script(source, { filename }) };
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    scriptError = e;
  }
  try {
    return { expression: true, script: new Script(`(${source.trim().replace(/;\s*$/, '')}\n)`, { filename }) };
  } catch (e) {
    // An anonymous function with a typo inside reads as a script error about the missing name.
    throw /require a function name/.test(scriptError.message) ? e : scriptError;
  }
}

const ANONYMOUS_FUNCTION = /^\s*(?:async\s+)?function\s*\*?\s*\(/;

/**
 * The top-level functions the script defined: new global properties (function declarations,
 * var, implicit globals), and const/let bindings, which live in the global lexical scope and are
 * only reachable by name: a name the source declares is looked up there, and counts only if it
 * holds a function the globals did not hold before.
 */
function topLevelFunctions(source: string, before: Map<string, unknown>, realm: Realm): Map<string, TaskFn> {
  const found = new Map<string, TaskFn>();
  for (const name of Object.getOwnPropertyNames(realm.global)) {
    const v = Object.getOwnPropertyDescriptor(realm.global, name)?.value;
    if (isFn(v) && before.get(name) !== v && !['module', 'exports', 'require'].includes(name)) found.set(name, v);
  }
  const declared = new Set([...source.matchAll(/\b(?:const|let)\s+([A-Za-z_$][\w$]*)/g)].map((m) => m[1]!).filter((n) => !RESERVED.has(n) && !found.has(n)));
  if (declared.size === 0) return found;
  const probe = [...declared].map((n) => `try { if (typeof ${n} === 'function') o[${JSON.stringify(n)}] = ${n}; } catch {}`).join('\n');
  let values: Record<string, unknown> = {};
  try {
    values = realm.run(new Script(`(() => { const o = Object.create(null);\n${probe}\nreturn o; })()`)) as Record<string, unknown>;
  } catch {
    /* a name that is no binding anywhere: nothing found through it */
  }
  for (const [name, v] of Object.entries(values)) if (isFn(v) && before.get(name) !== v) found.set(name, v);
  return found;
}
const RESERVED = new Set('await break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof let new null return static super switch this throw true try typeof var void while with yield'.split(' '));

/** The task function, picked by shape (README: "Task shapes"); InvalidTask when it cannot be told. */
function taskFunction(source: string, filename: string, entry: string | undefined, realm: Realm): TaskFn {
  const g = realm.global;
  const module = { exports: {} as unknown };
  g.module = module;
  g.exports = module.exports;
  const { expression, script } = compile(source, filename);
  // The globals before the script runs, to tell the functions it defines: not for an expression
  // (Ratchet's shape), which defines none (~0.2 ms of a pooled run: every global's descriptor).
  const before = expression ? null : new Map(Object.getOwnPropertyNames(g).map((n) => [n, Object.getOwnPropertyDescriptor(g, n)?.value]));
  const completion: unknown = realm.run(script);

  if (expression) {
    if (!isFn(completion)) throw new InvalidTask(`${filename} is an expression, not a function`);
    if (entry && completion.name && completion.name !== entry) throw new InvalidTask(`entry point "${entry}" not found: ${filename} is one function, named ${completion.name}`);
    return completion;
  }
  const exported = module.exports;
  const exportedFns = typeof exported === 'object' && exported !== null ? Object.entries(exported).filter((e): e is [string, TaskFn] => isFn(e[1])) : [];
  const top = topLevelFunctions(source, before!, realm);
  if (entry) {
    const fn = exportedFns.find(([n]) => n === entry)?.[1] ?? top.get(entry) ?? (isFn(exported) && exported.name === entry ? exported : undefined);
    if (fn) return fn;
    const names = [...new Set([...exportedFns.map(([n]) => n), ...top.keys()])];
    throw new InvalidTask(`entry point "${entry}" not found in ${filename}; its functions: ${names.join(', ') || 'none'}`);
  }
  if (isFn(exported)) return exported;
  if (exportedFns.length) {
    const fn = exportedFns.find(([n]) => n === 'main')?.[1] ?? (exportedFns.length === 1 ? exportedFns[0]![1] : undefined);
    if (fn) return fn;
    throw new InvalidTask(`${filename} exports several functions (${exportedFns.map(([n]) => n).join(', ')}), none named main: name the task with the metadata's entrypoint, or call it main`);
  }
  const main = top.get('main');
  if (main) return main;
  if (isFn(completion)) return completion;
  if (top.size === 1) return [...top.values()][0]!;
  if (top.size > 1) throw new InvalidTask(`${filename} has ${top.size} top-level functions (${[...top.keys()].join(', ')}), none named main and none exported: name the task with the metadata's entrypoint, call it main, or export it`);
  throw new InvalidTask(`${filename} defines no task function: expected "function(input) {...}", a function declaration (main, or the only one), or module.exports`);
}

// ---- fetch: one function for Ratchet's synchronous style and the awaited standard style -------

interface WireRequest {
  id: number;
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Uint8Array | null;
  timeoutMs: number;
  proxy: string | null;
}
type WireReply =
  | { id: number; ok: true; status: number; statusText: string; headers: Record<string, string>; body: Uint8Array; url: string }
  | { id: number; ok: false; kind: 'network' | 'timeout' | 'blocked'; message: string; code?: string };

const DEFAULT_TIMEOUT_MS = 30_000; // Ratchet's HTTP client default
const MAX_REDIRECTS = 10; // likewise

let request: TaskRequest;
let nextId = 1;

function normalize(url: unknown, options: unknown, body: unknown): WireRequest {
  const target = typeof url === 'string' ? url : url instanceof URL ? url.href : typeof (url as { url?: unknown })?.url === 'string' ? (url as { url: string }).url : null;
  if (target === null) throw new TypeError('fetch: the URL must be a string');
  const o = (options ?? {}) as { method?: unknown; headers?: unknown; body?: unknown; timeout?: unknown };
  const headers: Record<string, string> = {};
  // A Headers or Map instance, an array of pairs, or a plain object (Headers itself is not touched:
  // the global loads undici).
  const h = o.headers as { entries?: () => Iterable<[string, string]> } | [string, string][] | undefined;
  const given = Array.isArray(h) ? Object.fromEntries(h) : typeof h?.entries === 'function' ? Object.fromEntries(h.entries()) : (h ?? {});
  for (const [k, v] of Object.entries(given as Record<string, unknown>)) if (v !== undefined && v !== null) headers[k.toLowerCase()] = String(v);
  // Ratchet passes the body as the third argument; standard code puts it in options.body.
  const raw = body ?? o.body ?? null;
  let bytes: Uint8Array | null = null;
  if (typeof raw === 'string') bytes = Buffer.from(raw);
  // isView/isArrayBuffer, not instanceof: in reuse mode the task's typed arrays are another realm's.
  else if (ArrayBuffer.isView(raw)) bytes = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  else if (types.isArrayBuffer(raw)) bytes = new Uint8Array(raw);
  else if (raw instanceof URLSearchParams) {
    bytes = Buffer.from(raw.toString());
    headers['content-type'] ??= 'application/x-www-form-urlencoded;charset=UTF-8';
  } else if (raw !== null) {
    bytes = Buffer.from(JSON.stringify(raw));
    headers['content-type'] ??= 'application/json';
  }
  const timeoutMs = typeof o.timeout === 'number' && o.timeout > 0 ? o.timeout : DEFAULT_TIMEOUT_MS;
  return { id: nextId++, url: target, method: typeof o.method === 'string' ? o.method.toUpperCase() : 'GET', headers, body: bytes, timeoutMs, proxy: request.egressProxy ?? null };
}

/** A response with Ratchet's fields (body parsed as JSON when it is JSON) and the standard methods. */
function makeResponse(status: number, statusText: string, headers: Record<string, string>, bytes: Uint8Array, url: string) {
  const text = Buffer.from(bytes).toString('utf8');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: the text */
  }
  const h = { ...headers };
  Object.defineProperties(h, {
    get: { value: (name: string) => h[String(name).toLowerCase()] ?? null },
    has: { value: (name: string) => String(name).toLowerCase() in h },
  });
  const fields = { ok: status >= 200 && status < 300, status, statusText, headers: h, body };
  const methods = {
    url: { value: url },
    json: { value: () => Promise.resolve().then(() => JSON.parse(text) as unknown) },
    text: { value: () => Promise.resolve(text) },
    arrayBuffer: { value: () => Promise.resolve(Uint8Array.from(bytes).buffer) },
  };
  const plain = Object.defineProperties({ ...fields }, methods);
  // `fetch(url).then(r => r.json())` chains too: the returned object is a thenable whose value is
  // the same response without `then` (so `await` yields an object, not a loop).
  const promised = () => Promise.resolve(plain);
  return Object.defineProperties({ ...fields }, {
    ...methods,
    then: { value: (a?: (v: unknown) => unknown, b?: (e: unknown) => unknown) => promised().then(a, b) },
    catch: { value: (b?: (e: unknown) => unknown) => promised().catch(b) },
    finally: { value: (f?: () => void) => promised().finally(f) },
  });
}

/** Non-2xx answers as Ratchet maps them to its error classes; each also carries the status. */
function statusError(status: number, statusText: string): Error {
  const message = `HTTP ${status}: ${statusText}`;
  const e =
    status === 401 ? new AuthenticationError(message)
    : status === 403 ? new AuthorizationError(message)
    : status === 429 ? new RateLimitError(message)
    : status >= 500 && status < 600 ? new ServiceUnavailableError(message)
    : status >= 400 && status < 500 ? new HttpError(status, message)
    : new NetworkError(message);
  return Object.assign(e, { status });
}

function blocked(what: string, why: string): Error {
  report('network', `${what} (${why})`);
  return new NetworkError(`network access is blocked by policy: ${what} (${why})`);
}

function mockedResponse(req: WireRequest): ReturnType<typeof makeResponse> {
  const mock = request.mocks!.find((m) => req.url.includes(m.url) && String(m.method ?? 'GET').toUpperCase() === req.method);
  if (!mock) throw blocked(`fetch ${req.method} ${req.url}`, 'no mock matches it; a mocked run never opens a socket');
  const r = mock.response as { status?: unknown; ok?: unknown; statusText?: unknown; headers?: unknown; body?: unknown } | null;
  const full = typeof r === 'object' && r !== null && !Array.isArray(r) && typeof r.status === 'number' && ('body' in r || 'ok' in r);
  const status = full ? (r.status as number) : 200;
  const body = full ? r.body : r;
  const headers = full && typeof r.headers === 'object' && r.headers !== null ? Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), String(v)])) : {};
  return makeResponse(status, full && typeof r.statusText === 'string' ? r.statusText : (http().STATUS_CODES[status] ?? ''), headers, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body ?? null)), req.url);
}

/** Ratchet's fetch(url, options?, body?): synchronous; awaiting it (or .then) works as well. */
function fetch(url: unknown, options?: unknown, body?: unknown) {
  const req = normalize(url, options, body);
  let res: ReturnType<typeof makeResponse>;
  if (request.mocks) res = mockedResponse(req);
  else if (network === 'none') throw blocked(`fetch ${req.url}`, 'network mode none');
  else if (network === 'restricted' && !req.proxy) throw blocked(`fetch ${req.url}`, 'network mode restricted, but no egress proxy was given');
  else {
    const r = transport(req);
    if (!r.ok) {
      if (r.kind === 'blocked') throw blocked(`fetch ${req.url}`, r.message);
      if (r.kind === 'timeout') throw new TimeoutError(`fetch ${req.method} ${req.url} timed out after ${req.timeoutMs} ms`);
      throw Object.assign(new NetworkError(`fetch ${req.method} ${req.url} failed: ${r.message}`), r.code ? { code: r.code } : {});
    }
    res = makeResponse(r.status, r.statusText, r.headers, r.body, r.url);
  }
  if (!res.ok) throw statusError(res.status, res.statusText);
  return res;
}

// The synchronous call: a worker thread does the request on its own event loop while this thread
// sleeps in Atomics.wait; the answer comes back through a MessagePort read synchronously.
let worker: { port: WorkerThreads.MessagePort; flag: Int32Array } | null = null;

function transport(req: WireRequest): WireReply {
  const { MessageChannel, receiveMessageOnPort, Worker } = threads();
  if (!worker) {
    const { port1, port2 } = new MessageChannel();
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const w = new Worker(new URL(import.meta.url), { argv: [WORKER_ARG], workerData: { port: port2, flag }, transferList: [port2], stdout: false, stderr: false });
    w.unref();
    port1.unref();
    worker = { port: port1, flag };
  }
  Atomics.store(worker.flag, 0, 0);
  worker.port.postMessage(req);
  // The worker enforces the timeout; the grace covers its start-up (a few ms) and a stuck thread.
  const deadline = Date.now() + req.timeoutMs + 5000;
  for (;;) {
    const msg = receiveMessageOnPort(worker.port)?.message as WireReply | undefined;
    if (msg?.id === req.id) return msg;
    if (msg) continue; // a late answer to a request that already timed out here
    const left = deadline - Date.now();
    if (left <= 0) return { id: req.id, ok: false, kind: 'timeout', message: 'no answer' };
    Atomics.wait(worker.flag, 0, 0, left);
    Atomics.store(worker.flag, 0, 0);
  }
}

// ---- The egress tunnel (network mode restricted): HTTP CONNECT over the proxy's unix socket ----

function tunnel(proxy: string, host: string, port: number, cb: (err: Error | null, socket?: Net.Socket) => void): void {
  const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const sock = net().connect(proxy);
  let head = Buffer.alloc(0);
  const fail = (e: Error) => {
    sock.destroy();
    cb(e);
  };
  const onData = (d: Buffer) => {
    head = Buffer.concat([head, d]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > 16384) fail(new Error('the egress proxy sent an oversized answer'));
      return;
    }
    sock.removeListener('data', onData);
    sock.removeListener('error', fail);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head.toString('latin1'))?.[1] ?? 0);
    if (status >= 200 && status < 300) {
      const rest = head.subarray(end + 4);
      if (rest.length) sock.unshift(rest);
      return cb(null, sock);
    }
    const line = head.toString('latin1', 0, head.indexOf('\r\n'));
    fail(Object.assign(new Error(`the egress proxy refused ${authority}: ${line}`), { code: status === 403 || status === 407 ? 'EPOLICY' : 'EPROXY' }));
  };
  sock.on('data', onData);
  sock.on('error', fail);
  sock.once('connect', () => sock.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
}

type Agents = { http: Http.Agent; https: Https.Agent };
type OnCreate = (err: Error | null, socket: Duplex) => void;
/** How an agent gets its connection: (host, port, tls?) to a socket, through the callback. */
type Connector = (host: string, port: number, secure: boolean, o: Http.ClientRequestArgs, cb: (err: Error | null, socket?: Duplex) => void) => void;

/** An http and an https agent whose connections come from `connect` (node's Agent accepts a
 * createConnection that answers through its callback). */
function agentsFrom(connect: Connector): Agents {
  const make = (o: Http.ClientRequestArgs, cb: OnCreate | undefined, secure: boolean): undefined => {
    connect(o.host ?? 'localhost', Number(o.port ?? (secure ? 443 : 80)), secure, o, (err, socket) => cb?.(err, socket as Duplex));
    return undefined;
  };
  class HttpAgent extends http().Agent {
    override createConnection(o: Http.ClientRequestArgs, cb?: OnCreate): undefined {
      return make(o, cb, false);
    }
  }
  class HttpsAgent extends https().Agent {
    override createConnection(o: Http.ClientRequestArgs, cb?: OnCreate): undefined {
      return make(o, cb, true);
    }
  }
  return { http: new HttpAgent(), https: new HttpsAgent() };
}

/** Connections through the tunnel; for https, TLS runs inside it. */
function tunnelAgents(proxy: string): Agents {
  return agentsFrom((host, port, secure, o, cb) =>
    tunnel(proxy, host, port, (err, socket) => {
      if (err || !secure) return cb(err, socket);
      const servername = (o as Tls.ConnectionOptions).servername ?? (net().isIP(host) ? undefined : host);
      cb(null, tls().connect({ ...(o as Tls.ConnectionOptions), socket, ...(servername ? { servername } : {}) }));
    }),
  );
}

/** Every connection refused at once (network none, and mocked runs). */
function refusingAgents(why: string): Agents {
  return agentsFrom((host, port, _secure, _o, cb) => cb(blocked(`connect ${host}:${port}`, why)));
}

// ---- The fetch worker thread: this same file, started by transport() -------------------------

function fetchWorker(port: WorkerThreads.MessagePort, flag: Int32Array): void {
  let agents: Agents | null = null;
  port.on('message', (req: WireRequest) => {
    if (req.proxy) agents ??= tunnelAgents(req.proxy);
    void perform(req, agents).then((reply) => {
      port.postMessage(reply);
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
    });
  });
}

async function perform(req: WireRequest, agents: Agents | null): Promise<WireReply> {
  const fail = (kind: 'network' | 'timeout' | 'blocked', message: string, code?: string): WireReply => ({ id: req.id, ok: false, kind, message, ...(code ? { code } : {}) });
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return fail('network', `invalid URL: ${req.url}`);
  }
  const deadline = Date.now() + req.timeoutMs;
  let { method, body } = req;
  for (let redirects = 0; ; redirects++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail('network', `unsupported protocol ${url.protocol}`);
    const mod = url.protocol === 'https:' ? https() : http();
    const agent = agents ? (url.protocol === 'https:' ? agents.https : agents.http) : undefined;
    const headers = { ...req.headers, ...(body ? { 'content-length': String(body.length) } : {}) };
    let res: Http.IncomingMessage & { bytes?: Buffer };
    try {
      res = await new Promise((resolve, reject) => {
        const r = mod.request(url, { method, headers, ...(agent ? { agent } : {}) }, (m) => {
          const chunks: Buffer[] = [];
          m.on('data', (c: Buffer) => chunks.push(c));
          m.on('end', () => resolve(Object.assign(m, { bytes: Buffer.concat(chunks) })));
          m.on('error', reject);
        });
        r.setTimeout(Math.max(1, deadline - Date.now()), () => r.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT_FETCH' })));
        r.on('error', reject);
        r.end(body ?? undefined);
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ETIMEDOUT_FETCH') return fail('timeout', 'timed out');
      if (err.code === 'EPOLICY') return fail('blocked', err.message);
      return fail('network', `${err.code ? `${err.code} ` : ''}${err.message}`, err.code);
    }
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if ([301, 302, 303, 307, 308].includes(status) && location && redirects < MAX_REDIRECTS) {
      url = new URL(location, url);
      if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
        method = 'GET';
        body = null;
      }
      continue;
    }
    const headersOut: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headersOut[k] = Array.isArray(v) ? v.join(', ') : v;
    return { id: req.id, ok: true, status, statusText: res.statusMessage || http().STATUS_CODES[status] || '', headers: headersOut, body: res.bytes!, url: url.href };
  }
}

// ---- Node's own networking follows the same policy ----------------------------------------------

/**
 * The global fetch is the harness's (node's own, undici, would bypass everything here). node's
 * http/https get agents that refuse or tunnel as the mode says, installed when the task first
 * requires either (the only way in: the task's code has no dynamic import). The walls themselves
 * are the network namespace and the egress proxy; this makes node's modules fail fast and clearly.
 */
/** node's require for the task, made once (warmUp): its first making cost ~0.3 ms of a run. */
let madeRequire: NodeJS.Require | null = null;
function rootfsRequire(): NodeJS.Require {
  if (!madeRequire) {
    madeRequire = createRequire('/opt/pawl/');
    // Shared by every run's require (installNetworkPolicy copies it on): frozen, so one reuse-mode
    // run cannot leave a changed resolve() for the next.
    Object.freeze(madeRequire.resolve.paths);
    Object.freeze(madeRequire.resolve);
  }
  return madeRequire;
}

function installNetworkPolicy(global: object): (id: string) => unknown {
  Object.defineProperty(global, 'fetch', { value: fetch, writable: true, configurable: true, enumerable: true });
  const why = request.mocks ? 'a mocked run never opens a socket'
    : network === 'none' ? 'network mode none'
    : network === 'restricted' && !request.egressProxy ? 'network mode restricted, but no egress proxy was given'
    : null;
  let installed = network === 'full' && !request.mocks;
  const taskRequire = rootfsRequire();
  const wrapped = (id: string) => {
    if (!installed && /^(node:)?https?$/.test(id)) {
      installed = true;
      const agents = why ? refusingAgents(why) : tunnelAgents(request.egressProxy!);
      http().globalAgent = agents.http;
      https().globalAgent = agents.https;
    }
    return taskRequire(id);
  };
  return Object.assign(wrapped, taskRequire);
}

// ---- Replies --------------------------------------------------------------------------------

const NETWORK_CODES = new Set(['ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNREFUSED', 'EHOSTUNREACH']);
const FS_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);

function serialize(e: unknown): SerializedError {
  // isNativeError, not instanceof: in reuse mode the task's errors are another realm's.
  if (!(e instanceof Error) && !types.isNativeError(e)) return { name: 'Error', message: clip(`non-Error thrown: ${safeString(e)}`, ReplyLimit.Message) };
  const err = e as Error & { code?: unknown; status?: unknown; path?: unknown; syscall?: unknown };
  // Each field cut to what a reply may hold: a long message stays the task's own error.
  const out: SerializedError = { name: clip(String(err.name), ReplyLimit.Name), message: clip(String(err.message), ReplyLimit.Message) };
  // The task's frames only: the harness and node internals are noise to the task's author.
  if (err.stack) out.stack = clip(String(err.stack).split('\n').filter((l) => !l.includes(`${SELF}:`) && !/node:internal|^\s+at async/.test(l)).slice(0, 12).join('\n'), ReplyLimit.Stack);
  if (typeof err.code === 'string') out.code = clip(err.code, ReplyLimit.Code);
  if (typeof err.status === 'number') out.status = err.status;
  if (typeof err.path === 'string') out.path = clip(err.path, ReplyLimit.Path);
  if (typeof err.syscall === 'string') out.syscall = clip(err.syscall, ReplyLimit.Syscall);
  // Errors the sandbox caused are violations: the report names what was blocked.
  // EPERM with no path is a refused system call (the seccomp filter answers EPERM for denied ones).
  if (out.code === 'EPERM' && !out.path && out.syscall) report('syscall', `${out.syscall}: EPERM`);
  if (out.code && FS_CODES.has(out.code) && out.path) report('filesystem', `${out.syscall ?? 'access'} ${out.path}: ${out.code}`);
  if (out.code && NETWORK_CODES.has(out.code) && network !== 'full') report('network', `${out.syscall ?? 'connect'}: ${out.code}`);
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

/**
 * Send the one reply, then exit. Later calls (a timer throwing after the task returned) are ignored.
 * The task's output first reaches its pipes (node may still hold stdout or stderr writes in user
 * space), then this process lets go of them, and of the reply's: a pool ends the run at the reply
 * and reads the pipes to their end, which then comes without waiting for node's exit (~10 ms here).
 * The task's code may have corked the streams or replaced their write(): a flush that makes no
 * progress while node holds nothing for the kernel is given up after FLUSH_MS, and the reply goes
 * anyway. (After the close, a number the task reuses for a file of its own may catch a late write
 * of its own: its sandbox, its doing.)
 */
function reply(r: HarnessReply): void {
  if (replied) return;
  replied = true;
  const line = serializeReply(r);
  let sent = false;
  const send = () => {
    if (sent) return;
    sent = true;
    for (const fd of [1, 2]) closeQuietly(fd);
    writeLine(line);
    closeQuietly(Fd.Reply);
    process.exit(0);
  };
  const [out, err] = stdStreams;
  for (const { stream } of stdStreams) while (stream.writableCorked) stream.uncork();
  // Megabytes of output drain for as long as the supervisor reads them. writableLength alone does
  // not show it: queued writes go to libuv as one writev, and the stream's count stays the same
  // until all of it is in the kernel (measured: 20 MB, seconds behind a slow reader). libuv's own
  // queue (the handle's writeQueueSize) shrinks as the kernel takes bytes; bytes there wait only
  // for the reader, which always reads. So only a flush with nothing in libuv and no change in
  // either count for FLUSH_MS has stopped: the task's own tampering, given up on.
  const counts = () => [out.stream.writableLength, err.stream.writableLength, inLibuv(out), inLibuv(err)];
  // Nothing queued in either stream: every write is in the kernel already (~0.6 ms sooner than
  // the empty writes' callbacks below, on every run).
  if (out.stream.writableLength === 0 && err.stream.writableLength === 0) return send();
  let last = counts().join();
  setInterval(() => {
    const [o, e, lo, le] = counts();
    const now = `${o},${e},${lo},${le}`;
    if ((o === 0 && e === 0) || (now === last && lo === 0 && le === 0)) send();
    last = now;
  }, FLUSH_MS);
  try {
    out.write.call(out.stream, '', () => err.write.call(err.stream, '', send));
  } catch {
    send(); // a handle the task closed itself: nothing more can reach that pipe
  }
}
const FLUSH_MS = 200;
type OwnStream = { stream: NodeJS.WriteStream; write: (chunk: string, cb: () => void) => boolean; handle: { writeQueueSize?: number } | null };
/**
 * stdout and stderr, their write() and their libuv handle, as node made them (main(), before any
 * task code): what the task does to process.stdout later does not decide whether its reply goes.
 */
let stdStreams: [OwnStream, OwnStream];

const ownStream = (stream: NodeJS.WriteStream): OwnStream => ({
  stream,
  write: stream.write as OwnStream['write'],
  handle: (stream as unknown as { _handle?: OwnStream['handle'] })._handle ?? null,
});

/** Bytes libuv holds for the kernel (a file or a tty: written synchronously, none; a closed handle: none). */
function inLibuv(s: OwnStream): number {
  try {
    const n = s.handle?.writeQueueSize;
    return typeof n === 'number' ? n : 0;
  } catch {
    return 0;
  }
}

/** A descriptor the task may have closed itself already. */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* EBADF */
  }
}

/** A reply as one JSON line (an output JSON cannot hold is the task's output error). */
function serializeReply(r: HarnessReply, wrap: (r: HarnessReply) => unknown = (x) => x): string {
  try {
    return JSON.stringify(wrap(r));
  } catch (e) {
    return JSON.stringify(wrap({ ok: false, stage: 'output', error: { name: 'TypeError', message: clip(`output is not JSON-serialisable: ${(e as Error).message}`, ReplyLimit.Message) }, violations: replyViolations() }));
  }
}

function writeLine(line: string): void {
  const buf = Buffer.from(`${line}\n`);
  for (let off = 0; off < buf.length; ) off += writeSync(Fd.Reply, buf, off);
}

/**
 * Nothing of the supervisor stays within the task's reach but what it cannot avoid: the request
 * channel is closed once read. The reply channel (fd 4, a socket) is close-on-exec already
 * (measured), so programs the task spawns do not inherit it; the task runs in this process and can
 * still write it, but the host checks the reply's shape (reply.ts), so all it can forge is its own
 * result.
 */
let unread: Buffer[] = [];

/**
 * One request from fd 3. Single use: the supervisor writes one JSON text (never a raw newline or
 * other control character: JSON.stringify escapes them) and RequestEnd, then closes the pipe; the
 * byte or EOF ends it, whichever comes first. Reuse mode: newline-ended
 * lines, the pipe stays open between runs. null: closed with nothing sent (an idle pool sandbox).
 */
function readFrame(): { text: string; framed: boolean } | null {
  const chunk = Buffer.allocUnsafe(65536);
  for (;;) {
    const last = unread[unread.length - 1];
    if (last) {
      const end = last.indexOf(RequestEnd.Byte);
      const at = end >= 0 ? end : last.indexOf(10);
      if (at >= 0) {
        const { text, rest } = frameAt(unread, at);
        unread = end >= 0 ? [] : rest;
        return { text, framed: end < 0 };
      }
    }
    const n = readSync(Fd.Request, chunk, 0, chunk.length, null);
    if (n === 0) {
      const all = Buffer.concat(unread);
      unread = [];
      return all.length ? { text: all.toString('utf8'), framed: false } : null;
    }
    unread.push(Buffer.from(chunk.subarray(0, n)));
  }
}

/** The text of `parts` up to byte `at` of the last one, and the bytes after that one. */
function frameAt(parts: Buffer[], at: number): { text: string; rest: Buffer[] } {
  const all = Buffer.concat(parts);
  const end = all.length - parts[parts.length - 1]!.length + at;
  return { text: all.toString('utf8', 0, end), rest: end + 1 < all.length ? [all.subarray(end + 1)] : [] };
}

/** Run the current request's task in a realm; the reply to send. */
async function execute(realm: Realm): Promise<HarnessReply> {
  network = request.network;
  // `require` gives other JavaScript the node builtins (the rootfs holds no other modules).
  Object.assign(realm.global, ratchetGlobals, { require: installNetworkPolicy(realm.global) });
  let fn: TaskFn;
  try {
    fn = taskFunction(request.source, request.filename, request.entry, realm);
  } catch (e) {
    return { ok: false, stage: 'load', error: serialize(e), violations: replyViolations() };
  }
  try {
    const output = await fn(request.input, request.context);
    return { ok: true, output: output === undefined ? null : output, violations: replyViolations() };
  } catch (e) {
    return { ok: false, stage: 'run', error: serialize(e), violations: replyViolations() };
  }
}

/**
 * Run once what a task's run runs for the first time, while no task waits: V8 compiles a function
 * on its first call, and node builds console's formatting on its first use (measured in a booted
 * harness: a trivial task's request-to-reply went from ~6.5 to ~4.7 ms). An expression in this
 * realm defines no global; the console writes nowhere.
 */
function warmUp(): void {
  rootfsRequire();
  // readFrame's buffer work on a request-shaped frame (its first time was ~0.4 ms of a run).
  const chunk = Buffer.allocUnsafe(65536);
  const n = chunk.write(`{"input":{"a":[1,"x"]}}${String.fromCharCode(RequestEnd.Byte)}`, 'utf8');
  JSON.parse(frameAt([Buffer.from(chunk.subarray(0, n))], n - 1).text);
  taskFunction('function (input) { return input; }', 'warm.js', undefined, thisRealm)(null, null);
  new Console(new Writable({ write: (_c, _e, cb) => cb() })).log('%s %d', 'warm', 1, { a: [1] });
  JSON.parse(serializeReply({ ok: true, output: { a: [1, 'x'] }, violations: [] }));
}

async function main(): Promise<void> {
  // What every run needs, made while a pooled sandbox still waits for its task, not after:
  // node makes process.stdout/stderr on first use (measured: the harness's read-to-reply of a
  // trivial task went from ~20 to ~13 ms).
  stdStreams = [ownStream(process.stdout), ownStream(process.stderr)];
  // A write of nothing on each (no byte reaches the pipes): a task's first console.log no longer
  // pays for the stream's first write (~0.2 ms).
  for (const s of stdStreams) s.write.call(s.stream, '', () => {});
  warmUp();
  // Booted: the supervisor applies the run's CPU quota on this byte, then sends the request.
  writeSync(Fd.Reply, Buffer.of(Ready.Byte));
  const first = readFrame();
  if (first?.framed) return reuseLoop(first.text);
  request = JSON.parse(first?.text ?? '') as TaskRequest;
  closeSync(Fd.Request);
  reply(await execute(thisRealm));
}

// ---- Reuse mode (trusted and system only; README "Reuse mode"): runs of one task, one by one ----

/** Output kept up to a cap, the rest counted. */
class Capture extends Writable {
  private chunks: Buffer[] = [];
  private kept = 0;
  dropped = 0;
  /** Set from the run's request (the stream exists before the request is read). */
  max = 1 << 20;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    const room = Math.max(0, this.max - this.kept);
    if (room) this.chunks.push(chunk.subarray(0, room));
    this.kept += Math.min(room, chunk.length);
    this.dropped += chunk.length - Math.min(room, chunk.length);
    cb();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** The async error of the run in progress (a throw in its timer, a rejection nobody awaited). */
let failCurrentRun: ((e: unknown) => void) | null = null;
/** In reuse mode an async error between runs belongs to no run: dropped, never a reply of its own. */
let reusing = false;

/**
 * A fresh node:vm context for one run: its own JavaScript built-ins and globals, node's globals
 * (Buffer, URL, ...) as this process has them, a console and process.stdout/stderr that capture
 * this run's output, a copy of the starting environment as process.env, and timers that are all
 * cleared when the run ends. What it does not isolate is in the README ("Reuse mode").
 */
function freshRealm(stdout: Capture, stderr: Capture, env: NodeJS.ProcessEnv): { realm: Realm; dispose: () => void } {
  const ctx = createContext({});
  const g = new Script('globalThis').runInContext(ctx) as Record<string, unknown>;
  const own = new Set(Object.getOwnPropertyNames(g));
  for (const name of Object.getOwnPropertyNames(globalThis)) {
    if (own.has(name) || name === 'global') continue;
    Object.defineProperty(g, name, Object.getOwnPropertyDescriptor(globalThis, name)!);
  }
  const timers = new Set<NodeJS.Timeout | NodeJS.Immediate>();
  const track = <A extends unknown[], T extends NodeJS.Timeout | NodeJS.Immediate>(start: (f: (...a: A) => void, ...rest: never[]) => T, once: boolean) =>
    (f: unknown, ...rest: never[]) => {
      if (typeof f !== 'function') return start(f as never, ...rest);
      const t: T = start((...a: A) => {
        if (once) timers.delete(t);
        (f as (...a: A) => void)(...a);
      }, ...rest);
      timers.add(t);
      return t;
    };
  Object.assign(g, {
    global: g,
    console: new Console({ stdout, stderr }),
    process: Object.create(process, { env: { value: { ...env }, writable: true, enumerable: true }, stdout: { value: stdout }, stderr: { value: stderr } }),
    setTimeout: track(setTimeout, true),
    setInterval: track(setInterval, false),
    setImmediate: track(setImmediate, true),
  });
  const dispose = () => {
    for (const t of timers) {
      clearTimeout(t as NodeJS.Timeout);
      clearImmediate(t as NodeJS.Immediate);
    }
  };
  return { realm: { global: g, run: (s) => s.runInContext(ctx) }, dispose };
}

/** Reuse mode: each line on fd 3 is one run; each gets exactly one line back on fd 4, with its run number. */
async function reuseLoop(firstText: string): Promise<void> {
  reusing = true;
  const env = { ...process.env };
  // The next run's context is made while waiting for its request (a context costs milliseconds).
  const prepare = () => {
    const stdout = new Capture();
    const stderr = new Capture();
    return { stdout, stderr, ...freshRealm(stdout, stderr, env) };
  };
  let next = prepare();
  for (let text: string | null = firstText; text !== null; ) {
    request = JSON.parse(text) as TaskRequest;
    violations.length = 0;
    unlisted = 0;
    const { stdout, stderr, realm, dispose } = next;
    if (request.outputMax) [stdout.max, stderr.max] = [request.outputMax.stdout, request.outputMax.stderr];
    const failed = new Promise<HarnessReply>((resolve) => (failCurrentRun = (e) => resolve({ ok: false, stage: 'run', error: serialize(e), violations: replyViolations() })));
    const r = await Promise.race([execute(realm), failed]);
    failCurrentRun = null;
    dispose();
    const run = request.run ?? 0;
    writeLine(serializeReply(r, (reply): ReuseReply => ({ run, reply: reply as HarnessReply, stdout: stdout.text(), stderr: stderr.text(), stdoutDropped: stdout.dropped, stderrDropped: stderr.dropped })));
    next = prepare();
    text = readFrame()?.text ?? null;
  }
  process.exit(0);
}

if (!process.argv.includes(WORKER_ARG)) {
  // A rejection nobody awaited, or a throw in a timer callback, still ends the task as its error.
  const onAsyncError = (e: unknown) => (reusing ? failCurrentRun?.(e) : reply({ ok: false, stage: 'run', error: serialize(e), violations: replyViolations() }));
  process.on('unhandledRejection', onAsyncError);
  process.on('uncaughtException', onAsyncError);
  void main();
} else {
  const { port, flag } = threads().workerData as { port: WorkerThreads.MessagePort; flag: Int32Array };
  fetchWorker(port, flag);
}
