// `pawl serve` as a library: an HTTP JSON API over a unix socket (and optionally TCP with a
// bearer token) that runs tasks in the warm pool under its concurrency cap. The CLI
// (cli/commands/serve.ts) only parses flags, wires signals and prints.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { realpath, unlink } from 'node:fs/promises';
import { hostConfig, type HostConfig } from '../config/host.js';
import type { Policy, PolicyInput, ResourceLimits } from '../config/policy.js';
import { resolvePolicy } from '../config/resolve.js';
import { PawlError } from '../errors.js';
import { createMetrics, type Metrics } from '../metrics/index.js';
import { Pool } from '../pool/index.js';
import { ensureRootfs } from '../rootfs/index.js';
import { collectGarbage } from '../supervisor/gc.js';
import { loadTask, type LoadedTask } from '../task/load.js';
import { bearerMatches, readToken } from './auth.js';
import { applyCallerPolicy, parseCallerPolicy } from './caller-policy.js';
import { ApiError } from './errors.js';
import { readJson, sendError, sendJson } from './http.js';
import { INLINE_TASK_NAME, loadInlineTask } from './inline-task.js';
import { listenTcp, listenUnix } from './listen.js';
import { runView, RunStore, type RunRecord } from './runs.js';
import { CallerPolicy, RunRequest, ServiceConfig, type ServiceConfigInput } from './schema.js';
import { policyNameIn, resolveTaskPath } from './task-ref.js';

/**
 * The policy of a run of the named task with the caller's request applied. The default uses the
 * built-in trust presets at config.trustLevel; an operator config (security.yaml) plugs in here.
 * It must only ever make the service's policy stricter with the caller's (applyCallerPolicy).
 */
export type PolicyFor = (taskName: string, caller: CallerPolicy | undefined) => Policy;

export interface ServiceOptions {
  config: ServiceConfigInput;
  host?: HostConfig;
  policyFor?: PolicyFor;
  /** SIGHUP: re-read the operator's configuration; may hand back a new policyFor. */
  reload?: () => Promise<{ policyFor?: PolicyFor } | void>;
  /** One JSON object per service event (start, drain, kill at drain, cleanup, reload). */
  log?: (event: Record<string, unknown>) => void;
}

export function defaultPolicyFor(trustLevel: string): PolicyFor {
  return (_name, caller) => applyCallerPolicy(resolvePolicy({ trustLevel }), caller);
}

/** Limits where more is looser (the same list the resolver clamps a task's own policy with). */
const CEILINGS = ['memory', 'cpuPercent', 'processes', 'fileDescriptors', 'wallTime', 'cpuTime', 'diskReadBps', 'diskWriteBps', 'diskSpace', 'diskInodes', 'tmpSize', 'stdoutMax', 'stderrMax'] as const satisfies readonly (keyof ResourceLimits)[];

/** The task's own limits (metadata, its security.yaml) only tighten the service's policy. */
function withTaskLimits(policy: Policy, task: LoadedTask): Policy {
  const own = task.policy.resources;
  if (!own || !Object.keys(own).length) return policy;
  const asked = resolvePolicy({ trustLevel: policy.trustLevel, task: task.policy }).resources;
  const resources = { ...policy.resources };
  for (const k of CEILINGS) if (k in own) resources[k] = Math.min(resources[k], asked[k]);
  return { ...policy, resources };
}

const STATUS_OF: Record<PawlError['kind'], [number, string]> = {
  InvalidTask: [422, 'invalid_task'],
  InvalidPolicy: [422, 'invalid_policy'],
  HostUnsupported: [503, 'host_unsupported'],
  RuntimeError: [503, 'runtime_error'],
};

function apiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof PawlError) {
    const [status, code] = /^task not found/.test(e.message) ? [404, 'task_not_found'] : STATUS_OF[e.kind];
    return new ApiError(status, code, e.message);
  }
  return new ApiError(500, 'internal_error', `internal error: ${(e as Error)?.message ?? String(e)}`);
}

export class Service {
  readonly config: ServiceConfig;
  readonly host: HostConfig;
  readonly pool: Pool;
  readonly metrics: Metrics;
  private readonly runs: RunStore;
  private readonly servers: { server: Server; tcp: boolean }[] = [];
  private policyFor: PolicyFor;
  private token: Buffer | null = null;
  private roots: string[] = [];
  private draining = false;
  private cleanupTimer?: NodeJS.Timeout;
  private readonly log: (event: Record<string, unknown>) => void;

  constructor(private readonly opts: ServiceOptions) {
    const parsed = ServiceConfig.safeParse(opts.config);
    if (!parsed.success) throw new PawlError('InvalidPolicy', `invalid service config: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    this.config = parsed.data;
    if (this.config.listen && !this.config.tokenFile) throw new PawlError('InvalidPolicy', 'TCP (--listen) needs --token-file: the unix socket is the only unauthenticated way in');
    this.host = opts.host ?? hostConfig();
    // A teardown that fails after its run's result was answered: logged and counted all the same.
    this.pool = new Pool(this.config.pool, this.host, { teardownFailed: (f) => (this.log({ event: 'teardown_failed', ...f }), this.metrics.cleanupFailures(1)) });
    this.runs = new RunStore(this.config.resultTtlMs, this.config.maxResults, this.config.maxResultBytes);
    this.metrics = createMetrics(() => this.pool.stats(), () => this.runs.running().length);
    this.policyFor = opts.policyFor ?? defaultPolicyFor(this.config.trustLevel);
    this.log = opts.log ?? (() => {});
  }

  async start(): Promise<void> {
    this.roots = await Promise.all(this.config.taskRoots.map((r) => realpath(r).catch(() => {
      throw new PawlError('InvalidPolicy', `--task-root ${r} does not exist`);
    })));
    if (this.config.tokenFile) this.token = await readToken(this.config.tokenFile);
    // Once, before the first request: a rootfs that cannot be built stops the service here, and
    // concurrent first runs never race to rebuild the same cache (its index is written per pid).
    await ensureRootfs(this.host);
    const unix = this.makeServer(false);
    await listenUnix(unix, this.config.socket);
    if (this.config.listen) {
      const tcp = this.makeServer(true);
      await listenTcp(tcp, this.config.listen);
    }
    this.cleanupTimer = setInterval(() => void this.cleanup(), this.config.cleanupIntervalMs);
    void this.cleanup();
    this.log({ event: 'listening', socket: this.config.socket, ...(this.config.listen ? { listen: this.config.listen } : {}), pool: this.pool.config });
  }

  /** The TCP address actually bound (port 0 picks one). */
  tcpAddress(): string | null {
    const a = this.servers.find((s) => s.tcp)?.server.address();
    return a && typeof a === 'object' ? `${a.address}:${a.port}` : null;
  }

  /** SIGHUP: the operator's configuration and the token file are read again; running runs keep theirs. */
  async reload(): Promise<void> {
    const next = await this.opts.reload?.();
    if (next && next.policyFor) this.policyFor = next.policyFor;
    if (this.config.tokenFile) this.token = await readToken(this.config.tokenFile);
    this.log({ event: 'reloaded' });
  }

  /** Remove dead runs' leftovers (never this process's live runs) and expire old results. */
  async cleanup(): Promise<void> {
    const expired = this.runs.expire();
    try {
      const report = await collectGarbage(this.host);
      this.metrics.cleanupFailures(report.errors.length);
      const removed = report.cgroups.length + report.scratch.length + report.containers.length;
      if (removed || report.errors.length || expired) this.log({ event: 'cleanup', removed, errors: report.errors, expired_results: expired });
    } catch (e) {
      this.metrics.cleanupFailures(1);
      this.log({ event: 'cleanup', error: (e as Error).message });
    }
  }

  /**
   * SIGTERM: stop accepting, let running runs finish for up to drainTimeoutMs, then kill the rest
   * (their results say Cancelled) and report each; close the pool. Resolves with the killed runs.
   */
  async shutdown(): Promise<RunRecord[]> {
    if (this.draining) return [];
    this.draining = true;
    clearInterval(this.cleanupTimer);
    const closed = this.servers.map(({ server }) => new Promise<void>((r) => server.close(() => r())));
    for (const { server } of this.servers) server.closeIdleConnections();
    await unlink(this.config.socket).catch(() => {});
    const running = this.runs.running();
    this.log({ event: 'draining', running: running.length, deadline_ms: this.config.drainTimeoutMs });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(running.map((r) => r.done)), new Promise((r) => (timer = setTimeout(r, this.config.drainTimeoutMs)))]);
    clearTimeout(timer);
    const killed = this.runs.running();
    for (const r of killed) {
      r.controller.abort();
      this.log({ event: 'killed_at_drain', id: r.id, task: r.task });
    }
    await Promise.all(killed.map((r) => r.done));
    await this.pool.close();
    // Waiting clients have had their answers written; give slow readers a moment, then cut.
    await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 2000).unref())]);
    for (const { server } of this.servers) server.closeAllConnections();
    this.log({ event: 'stopped', killed: killed.map((r) => r.id) });
    return killed;
  }

  private makeServer(tcp: boolean): Server {
    const c = this.config;
    const server = createServer({
      headersTimeout: c.headersTimeoutMs,
      requestTimeout: c.requestTimeoutMs,
      // Node checks those timeouts on this interval (30 s by default): slow clients go on time.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(c.headersTimeoutMs / 2))),
      maxHeaderSize: 16 * 1024,
      keepAliveTimeout: 5000,
    }, (req, res) => void this.handle(req, res, tcp));
    // A broken client connection is that client's problem, never the service's.
    server.on('clientError', (e: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return void socket.destroy();
      const [status, code] = e.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? ['408 Request Timeout', 'request_timeout']
        : e.code === 'HPE_HEADER_OVERFLOW' ? ['431 Request Header Fields Too Large', 'headers_too_large'] : ['400 Bad Request', 'bad_request'];
      const body = JSON.stringify({ error: { code, message: `${status.slice(4)}: ${e.message}` } });
      socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
    this.servers.push({ server, tcp });
    return server;
  }

  private async handle(req: IncomingMessage, res: ServerResponse, tcp: boolean): Promise<void> {
    try {
      if (this.draining) res.setHeader('connection', 'close');
      const url = new URL(req.url ?? '/', 'http://pawl');
      if (tcp && url.pathname !== '/healthz' && !bearerMatches(req.headers.authorization, this.token!)) {
        throw new ApiError(401, 'unauthorized', 'a valid "Authorization: Bearer TOKEN" header is required');
      }
      await this.route(req, res, url);
    } catch (e) {
      const err = apiError(e);
      if (err.status === 500) this.log({ event: 'internal_error', message: err.message });
      sendError(res, err, err.status === 401 ? { 'www-authenticate': 'Bearer' } : err.status === 405 ? { allow: (err as ApiError & { allow?: string }).allow ?? '' } : {});
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const allow = (...methods: string[]) => {
      if (!methods.includes(method)) throw Object.assign(new ApiError(405, 'method_not_allowed', `${method} is not allowed on ${path}; allowed: ${methods.join(', ')}`), { allow: methods.join(', ') });
    };
    if (path === '/healthz') {
      allow('GET');
      return sendJson(res, this.draining ? 503 : 200, { status: this.draining ? 'draining' : 'ok', running: this.runs.running().length, pool: this.pool.stats() });
    }
    if (path === '/metrics') {
      allow('GET');
      const text = await this.metrics.text();
      res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
      return void res.end(text);
    }
    if (path === '/v1/runs') {
      allow('GET', 'POST');
      if (method === 'GET') return sendJson(res, 200, { runs: this.runs.recent(this.config.listLimit).map((r) => runView(r, false)) });
      return this.submit(req, res);
    }
    const m = /^\/v1\/runs\/([^/]+)$/.exec(path);
    if (m) {
      allow('GET', 'DELETE');
      const record = this.runs.get(m[1]!);
      if (!record) throw new ApiError(404, 'run_not_found', `no run ${m[1]!.slice(0, 80)} (unknown, or its result has expired)`);
      if (method === 'GET') {
        // ?wait=true answers once the run has ended: a client that submitted with wait false
        // (so it knows the id and can cancel) waits without polling (`pawl run --server`).
        if (url.searchParams.get('wait') === 'true') await record.done;
        return sendJson(res, 200, runView(record, true));
      }
      return this.cancel(res, record);
    }
    throw new ApiError(404, 'not_found', `no endpoint ${path.slice(0, 200)}`);
  }

  private async submit(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.draining) throw new ApiError(503, 'shutting_down', 'the service is shutting down and accepts no new runs');
    const body = await readJson(req, this.config.maxBodyBytes);
    const parsed = RunRequest.safeParse(body);
    if (!parsed.success) throw new ApiError(422, 'invalid_request', parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '));
    const request = parsed.data;
    const caller = parseCallerPolicy(request.policy);
    const path = typeof request.task === 'string' ? await resolveTaskPath(request.task, this.roots) : null;
    const loaded = typeof request.task === 'string' ? await loadTask(path!, { tests: false, resolved: true }) : await loadInlineTask(request.task);
    // Inline tasks are all "inline" to policyFor: a caller cannot borrow an operator's task name.
    // A path task is known by its path below its root (policyNameIn), never by what it contains.
    const policy = withTaskLimits(this.policyFor(path !== null ? policyNameIn(path, this.roots) : INLINE_TASK_NAME, caller), loaded);
    const taskLabel = typeof request.task === 'string' ? request.task : INLINE_TASK_NAME;
    const record = this.runs.add(taskLabel, (r) => this.execute(r, loaded, policy, request.input));
    const location = { location: `/v1/runs/${record.id}`, 'x-pawl-run-id': record.id };
    if (!request.wait) return sendJson(res, 202, { id: record.id }, location);
    // A client that goes away now cancels nothing: the run ends on its own and stays retrievable.
    await record.done;
    if (record.result) return sendJson(res, 200, record.result, location);
    sendError(res, new ApiError(record.error!.status, record.error!.code, record.error!.message), location);
  }

  private async execute(record: RunRecord, loaded: LoadedTask, policy: Policy, input: unknown): Promise<void> {
    try {
      record.result = await this.pool.run(loaded, { input, trustLevel: policy.trustLevel, policy: policy as PolicyInput, signal: record.controller.signal });
      record.state = 'done';
      this.metrics.result(record.result);
    } catch (e) {
      const err = record.cancelled && e instanceof PawlError ? new ApiError(409, 'cancelled', e.message) : apiError(e);
      record.error = { status: err.status, code: err.code, message: err.message };
      record.state = 'error';
      this.metrics.notRun(e instanceof PawlError ? e.kind : 'internal');
    } finally {
      record.finishedAt = Date.now();
      this.runs.finished(record);
    }
  }

  private async cancel(res: ServerResponse, record: RunRecord): Promise<void> {
    if (record.state !== 'running') throw new ApiError(409, 'already_finished', `run ${record.id} has already ended`);
    record.cancelled = true;
    record.controller.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([record.done, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
    sendJson(res, 200, runView(record, true));
  }
}
