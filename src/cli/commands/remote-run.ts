// `pawl run TASK --server SOCKET`: the run goes to a `pawl serve` on this machine (its warm pool
// and its policy), so the CLI loads only this file and node's http client: no zod, no library, no
// sandbox of its own. The task must be under one of the service's --task-root dirs; the flags
// are the caller policy, which the service only lets make the run stricter (README "Service").
// The run is submitted without waiting (so its id is known), then waited for; Ctrl-C or SIGTERM
// cancels it in the service and prints the cancelled result, as a local `pawl run` would.
import { request } from 'node:http';
import { resolve } from 'node:path';
import { PawlError } from '../../errors.js';
import { NETWORK_OPTIONS, UsageError, type LIMIT_OPTIONS, type Values } from '../args.js';
import { formatResult } from '../format.js';
import { out } from '../output.js';
import { envFromFlags, resourcesFromFlags } from '../resource-flags.js';

interface Answer {
  status: number;
  body: unknown;
}

/** One request to the service over its unix socket; the body as JSON. */
function call(socketPath: string, method: string, path: string, body?: unknown): Promise<Answer> {
  return new Promise((done, fail) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath, method, path, headers: text === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        try {
          done({ status: res.statusCode ?? 0, body: JSON.parse(raw) });
        } catch {
          fail(new PawlError('RuntimeError', `the service at ${socketPath} answered ${res.statusCode} with a body that is not JSON: ${raw.slice(0, 200)}`));
        }
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) => fail(new PawlError('RuntimeError', `cannot reach the service at ${socketPath}: ${e.code === 'ENOENT' ? 'no such socket (is `pawl serve` running?)' : e.message}`)));
    req.end(text);
  });
}

/** The service's {"error": {code, message}} as one line. */
function refusal(socketPath: string, a: Answer): PawlError {
  const e = (a.body as { error?: { code?: string; message?: string } }).error;
  return new PawlError('RuntimeError', `the service at ${socketPath} refused the run (${a.status} ${e?.code ?? 'unknown'}): ${e?.message ?? JSON.stringify(a.body)}`);
}

/** The caller policy the flags ask for. The network is the service's: only --network none may be asked. */
export function callerPolicy(v: Values<typeof LIMIT_OPTIONS>): Record<string, unknown> {
  const netFlags = Object.keys(NETWORK_OPTIONS).filter((k) => k !== 'network' && v[k as keyof typeof v] !== undefined);
  if (netFlags.length || (v.network !== undefined && v.network !== 'none')) {
    throw new UsageError(`--${netFlags[0] ?? `network ${v.network}`}: with --server the service decides the network; only --network none may be asked`);
  }
  const policy: Record<string, unknown> = {};
  if (v.trust !== undefined) policy.trustLevel = v.trust;
  const resources = resourcesFromFlags(v);
  if (Object.keys(resources).length) policy.resources = resources;
  if (v.network === 'none') policy.network = { mode: 'none' };
  if (v.env?.length) policy.env = envFromFlags(v.env);
  // Sent as asked: the service answers 403 naming it (runtime is the operator's choice).
  if (v.runtime !== undefined) policy.runtime = v.runtime;
  return policy;
}

/** Runs the task in the service and prints its result; the exit status as a local run's. */
export async function remoteRun(socketPath: string, task: string, input: unknown, v: Values<typeof LIMIT_OPTIONS>): Promise<number> {
  const policy = callerPolicy(v);
  // The handlers go in before the run is submitted: a Ctrl-C while it is being submitted cancels
  // it as soon as its id is known, instead of leaving it to run in the service.
  let id: string | undefined;
  let stop = false;
  let cancelled: Promise<Answer> | undefined;
  const cancel = () => {
    stop = true;
    if (id !== undefined) cancelled ??= call(socketPath, 'DELETE', `/v1/runs/${id}`).catch((e: Error) => ({ status: 0, body: { error: { message: e.message } } }));
  };
  process.on('SIGINT', cancel);
  process.on('SIGTERM', cancel);
  try {
    const submitted = await call(socketPath, 'POST', '/v1/runs', { task: resolve(task), input, policy, wait: false });
    if (submitted.status !== 202) throw refusal(socketPath, submitted);
    id = encodeURIComponent(String((submitted.body as { id: unknown }).id));
    if (stop) cancel();
    const ended = await call(socketPath, 'GET', `/v1/runs/${id}?wait=true`);
    if (ended.status !== 200) throw refusal(socketPath, ended);
    const view = ended.body as { state: string; result?: { status?: string }; error?: { code: string; message: string } };
    if (cancelled) await cancelled; // the DELETE's answer comes once the run has ended: nothing stays
    if (view.result) {
      out(formatResult(view.result));
      return view.result.status === 'succeeded' ? 0 : 1;
    }
    throw new PawlError('RuntimeError', `the service at ${socketPath} could not run it (${view.error?.code ?? view.state}): ${view.error?.message ?? ''}`);
  } finally {
    process.off('SIGINT', cancel);
    process.off('SIGTERM', cancel);
  }
}
