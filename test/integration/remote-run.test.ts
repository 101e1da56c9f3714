// `pawl run --server SOCKET`: the shipped bin hands the run to a real `pawl serve` (its warm pool,
// its policy) and prints the same result a local run prints, through a pipe; the service's
// refusals come back as one line and exit 2; Ctrl-C cancels the run in the service.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectGarbage } from '../../src/supervisor/gc.js';
import { FIXTURES, leftovers, testHost } from '../helpers/host.js';
import { startService, type RunningService } from '../helpers/service.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'dist', 'bundle', 'pawl.mjs');
const ADD = join(ROOT, 'examples', 'add');
const host = testHost('remote');
const work = mkdtempSync(join(tmpdir(), 'pawl-remote-test-'));
let svc: RunningService;

/** The bin through a pipe (`pawl run ... | cat`): stdout, stderr, exit code; onStart gets the child. */
function pawl(args: string[], onStart?: (pid: number) => void): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', 'node "$@" | cat; exit "${PIPESTATUS:-0}"', 'sh', BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    if (onStart) onStart(child.pid!);
    child.on('close', (code) => resolve({ stdout, stderr, code }));
  });
}

/** Without the pipe, for the exit status and signals (the node process is the child). */
function pawlDirect(args: string[]) {
  const child = spawn('node', [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c));
  child.stderr.on('data', (c: Buffer) => (stderr += c));
  const done = new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve) => child.on('close', (code) => resolve({ stdout, stderr, code })));
  return { child, done };
}

beforeAll(async () => {
  svc = await startService(join(work, 'pawl.sock'), host, ['--task-root', join(ROOT, 'examples'), '--task-root', FIXTURES, '--pool-size', '1']);
}, 60_000);

afterAll(async () => {
  svc.proc.kill('SIGTERM');
  expect(await svc.exited).toBe(0);
  await collectGarbage(host);
  const left = await leftovers(host);
  expect(left).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
  rmSync(work, { recursive: true, force: true });
}, 60_000);

describe('pawl run --server', () => {
  it('runs the task in the service and prints the whole result through a pipe, exit 0', async () => {
    const r = await pawl(['run', ADD, '--server', svc.socket, '--input', '{"num1":20,"num2":22}']);
    expect(r.stderr).toBe('');
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({ status: 'succeeded', output: { sum: 42 }, runtime: 'bwrap' });
    expect(result.usage.peak_memory_bytes).toBeGreaterThan(0);
    // The service ran it: its run list has the task (under the id the service gave it).
    const listed = await svc.call('GET', '/v1/runs');
    expect(listed.json.runs.map((x: { task: string }) => x.task)).toContain(ADD);
  });

  it('sends the limit flags as the caller policy: --timeout ends a spinner as Timeout, exit 1', async () => {
    const direct = pawlDirect(['run', join(FIXTURES, 'spin'), '--server', svc.socket, '--timeout', '500ms']);
    const r = await direct.done;
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'failed', error: { kind: 'Timeout' } });
  });

  it('says what the service refused and exits 2: an operator-only field, a task outside its roots, a network it decides', async () => {
    const runtime = pawlDirect(['run', ADD, '--server', svc.socket, '--runtime', 'runc']);
    const outside = pawlDirect(['run', '/etc', '--server', svc.socket]);
    const network = pawlDirect(['run', ADD, '--server', svc.socket, '--allow-host', 'example.com']);
    const [a, b, c] = await Promise.all([runtime.done, outside.done, network.done]);
    expect([a.code, b.code, c.code]).toEqual([2, 2, 2]);
    expect(a.stderr).toMatch(/^pawl: the service at .* refused the run \(403 policy_forbidden\): policy\.runtime/);
    expect(b.stderr).toMatch(/\(403 task_forbidden\): task \/etc is outside the service's task roots/);
    expect(c.stderr).toMatch(/--allow-host: with --server the service decides the network/);
    expect(a.stdout + b.stdout + c.stdout).toBe('');
  });

  it('no service at the socket: one line naming it, exit 2', async () => {
    const r = await pawlDirect(['run', ADD, '--server', join(work, 'nothing.sock')]).done;
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot reach the service at .*nothing\.sock: no such socket \(is `pawl serve` running\?\)/);
  });

  it('Ctrl-C cancels the run in the service and prints its Cancelled result, exit 1; nothing keeps running', async () => {
    const direct = pawlDirect(['run', join(FIXTURES, 'spin'), '--server', svc.socket, '--timeout', '60s']);
    const end = Date.now() + 30_000;
    while ((await svc.call('GET', '/healthz')).json.running < 1) {
      if (Date.now() > end) throw new Error('the run never started');
      await new Promise((r) => setTimeout(r, 50));
    }
    direct.child.kill('SIGINT');
    const r = await direct.done;
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'failed', error: { kind: 'Cancelled' } });
    expect((await svc.call('GET', '/healthz')).json.running).toBe(0);
  });
});
