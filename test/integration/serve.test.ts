// `pawl serve` for real: the built CLI in a child process, real sandboxes, node:http over its
// unix socket. Each client gets its own result; bad requests get precise 4xx and the service
// stays up; SIGTERM drains; a client that goes away mid-run cancels nothing and leaks nothing;
// /metrics parses and counts the runs made.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectGarbage } from '../../src/supervisor/gc.js';
import { leftovers, testHost } from '../helpers/host.js';
import { call, startService, type RunningService } from '../helpers/service.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const host = testHost('serve');
const work = mkdtempSync(join(tmpdir(), 'pawl-serve-test-'));
const roots = join(work, 'tasks');

function task(name: string, body: string): string {
  const dir = join(roots, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'main.js'), `function(input) { ${body} }`);
  writeFileSync(join(dir, 'metadata.json'), JSON.stringify({ name }));
  return dir;
}
const SQUARE = task('square', 'return { n: input.n, sq: input.n * input.n, via: "path" };');
const SLEEP = task('sleep', 'return new Promise((r) => setTimeout(() => r({ slept: input.ms }), input.ms));');
symlinkSync('/etc', join(roots, 'escape'));
const inlineSquare = { source: 'function(input) { return { n: input.n, sq: input.n * input.n, via: "inline" }; }' };

/** Metric samples "name{labels}" -> value, after a strict check of every line of the exposition format. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})?) (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line);
    if (!m) throw new Error(`not a metric line: ${JSON.stringify(line)}`);
    samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}

const until = async (what: string, check: () => Promise<boolean>, ms = 60_000) => {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

async function noLeftovers(): Promise<void> {
  const left = await leftovers(host);
  // Each process left, with its command line and groups: enough to tell whose it is.
  const show = (pid: number) => {
    try {
      return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 120)} [${readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').filter((l) => /memory|pids/.test(l)).join(' ')}]`;
    } catch {
      return `${pid} (gone)`;
    }
  };
  expect(left.processes.map(show)).toEqual([]);
  expect(left.cgroups).toEqual([]);
  expect(left.scratch).toEqual([]);
}

afterAll(async () => {
  await collectGarbage(host);
  await noLeftovers();
  // Inline tasks are written to a private temp dir only while they load.
  expect(readdirSync(tmpdir()).filter((n) => n.startsWith('pawl-inline-'))).toEqual([]);
  rmSync(work, { recursive: true, force: true });
}, 60_000);

describe('pawl serve', () => {
  let svc: RunningService;
  let runsMade = 0;
  beforeAll(async () => {
    svc = await startService(join(work, 'main.sock'), host, [
      '--task-root', roots, '--pool-size', '2', '--max-concurrent', '6', '--max-body', '64KB', '--headers-timeout', '1s', '--request-timeout', '2s',
    ]);
  }, 60_000);
  afterAll(async () => {
    svc.proc.kill('SIGTERM');
    expect(await svc.exited).toBe(0);
  }, 60_000);

  it('listens on a unix socket of mode 0660', () => {
    const st = statSync(svc.socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o660);
  });

  it('makes the socket\'s dir 0755 under a hardened umask (its group reaches the socket)', async () => {
    const dir = join(work, 'umask-077', 'run');
    const listen = join(import.meta.dirname, '..', '..', 'dist', 'service', 'listen.js');
    const script = `process.umask(0o077);
      const { listenUnix } = await import(${JSON.stringify(listen)});
      const server = (await import('node:http')).createServer();
      await listenUnix(server, ${JSON.stringify(join(dir, 'pawl.sock'))});
      server.close();`;
    await execa(process.execPath, ['--input-type=module', '-e', script]);
    expect(statSync(dir).mode & 0o777).toBe(0o755);
    expect(statSync(join(work, 'umask-077')).mode & 0o777).toBe(0o755);
  });

  it('gives each of 50 concurrent clients its own result', async () => {
    const replies = await Promise.all(Array.from({ length: 50 }, (_, n) =>
      svc.call('POST', '/v1/runs', { task: n % 2 ? SQUARE : inlineSquare, input: { n } })));
    runsMade += 50;
    replies.forEach((r, n) => {
      expect(r.status, r.text).toBe(200);
      expect(r.json, r.text).toMatchObject({ status: 'succeeded', output: { n, sq: n * n, via: n % 2 ? 'path' : 'inline' }, runtime: 'bwrap' });
      expect(r.headers['x-pawl-run-id']).toMatch(/^r-[0-9a-f]{24}$/);
    });
    expect(new Set(replies.map((r) => r.json.id)).size).toBe(50);
  }, 300_000);

  it.each([
    ['malformed JSON', 'POST', '/v1/runs', '{"task": ', 400, 'malformed_json'],
    ['an empty body', 'POST', '/v1/runs', '', 400, 'malformed_json'],
    ['a body over the cap', 'POST', '/v1/runs', JSON.stringify({ task: inlineSquare, input: { pad: 'x'.repeat(100_000) } }), 413, 'body_too_large'],
    ['JSON nested too deeply', 'POST', '/v1/runs', `{"task":"x","input":${'['.repeat(500)}${']'.repeat(500)}}`, 422, 'too_deep'],
    ['no task', 'POST', '/v1/runs', { input: {} }, 422, 'invalid_request'],
    ['an unknown field', 'POST', '/v1/runs', { task: inlineSquare, priority: 9 }, 422, 'invalid_request'],
    ['a relative task path', 'POST', '/v1/runs', { task: 'square' }, 422, 'invalid_task'],
    ['a task outside the roots', 'POST', '/v1/runs', { task: '/etc' }, 403, 'task_forbidden'],
    ['.. out of the roots', 'POST', '/v1/runs', { task: `${roots}/../..` }, 403, 'task_forbidden'],
    ['a link out of the roots', 'POST', '/v1/runs', { task: join(roots, 'escape') }, 403, 'task_forbidden'],
    ['an unknown task', 'POST', '/v1/runs', { task: join(roots, 'nope') }, 404, 'task_not_found'],
    ['a task that does not load', 'POST', '/v1/runs', { task: roots }, 422, 'invalid_task'],
    ['an operator policy field', 'POST', '/v1/runs', { task: inlineSquare, policy: { filesystem: { binds: [{ src: '/', dst: '/host' }] } } }, 403, 'policy_forbidden'],
    ['a looser limit', 'POST', '/v1/runs', { task: inlineSquare, policy: { resources: { memory: '8GB' } } }, 403, 'policy_forbidden'],
    ['a looser network', 'POST', '/v1/runs', { task: inlineSquare, policy: { network: { mode: 'full' } } }, 403, 'policy_forbidden'],
    ['a malformed policy', 'POST', '/v1/runs', { task: inlineSquare, policy: { resources: { memory: 'lots' } } }, 422, 'invalid_policy'],
    ['a variable every sandbox gets', 'POST', '/v1/runs', { task: inlineSquare, policy: { env: { PATH: '/tmp' } } }, 403, 'policy_forbidden'],
    // Raw JSON: "__proto__" is an own key there, which a record would drop (the schema then accepting anything).
    ['a schema with a "__proto__" key', 'POST', '/v1/runs', '{"task": {"source": "function(i) { return i; }", "input_schema": {"__proto__": {"type": "string"}}}, "input": 5}', 422, 'invalid_request'],
    ['an env "__proto__"', 'POST', '/v1/runs', '{"task": {"source": "function(i) { return i; }"}, "policy": {"env": {"__proto__": "x"}}}', 422, 'invalid_policy'],
    ['a wrong method', 'PUT', '/v1/runs', undefined, 405, 'method_not_allowed'],
    ['a wrong method on a run', 'POST', '/v1/runs/r-000000000000000000000000', undefined, 405, 'method_not_allowed'],
    ['an unknown run', 'GET', '/v1/runs/r-000000000000000000000000', undefined, 404, 'run_not_found'],
    ['an unknown endpoint', 'GET', '/v2/everything', undefined, 404, 'not_found'],
  ])('refuses %s with a precise 4xx and stays up', async (_what, method, path, body, status, code) => {
    const r = await svc.call(method as string, path as string, body);
    expect(r.status, r.text).toBe(status);
    expect(r.json).toEqual({ error: { code, message: expect.any(String) } });
    if (status === 405) expect(r.headers.allow).toBe(path === '/v1/runs' ? 'GET, POST' : 'GET, DELETE');
    expect((await svc.call('GET', '/healthz')).status).toBe(200);
  });

  it('drops a client that sends its headers too slowly, and one that never finishes its body', async () => {
    const slow = (payload: string) => new Promise<string>((resolve) => {
      const s = connect(svc.socket);
      let got = '';
      s.on('data', (c) => (got += c.toString()));
      s.on('close', () => resolve(got));
      s.on('error', () => {});
      s.write(payload);
    });
    const [headers, body] = await Promise.all([
      slow('POST /v1/runs HTTP/1.1\r\nHost: x\r\n'),
      slow('POST /v1/runs HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"task":'),
    ]);
    expect(headers).toMatch(/^HTTP\/1\.1 408/);
    expect(body).toMatch(/^HTTP\/1\.1 408/);
    expect((await svc.call('GET', '/healthz')).status).toBe(200);
  }, 30_000);

  it('runs without waiting, reports the run by id, lists it, and cancels a running one', async () => {
    const quick = await svc.call('POST', '/v1/runs', { task: inlineSquare, input: { n: 7 }, wait: false });
    expect(quick.status).toBe(202);
    expect(quick.headers.location).toBe(`/v1/runs/${quick.json.id}`);
    await until('the run to end', async () => (await svc.call('GET', `/v1/runs/${quick.json.id}`)).json.state !== 'running');
    expect((await svc.call('GET', `/v1/runs/${quick.json.id}`)).json).toMatchObject({ state: 'done', result: { status: 'succeeded', output: { sq: 49 } } });

    const spin = await svc.call('POST', '/v1/runs', { task: SLEEP, input: { ms: 120_000 }, wait: false });
    runsMade += 2;
    expect((await svc.call('GET', `/v1/runs/${spin.json.id}`)).json.state).toBe('running');
    const cancelled = await svc.call('DELETE', `/v1/runs/${spin.json.id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.json).toMatchObject({ state: 'done', cancel_requested: true, result: { status: 'failed', error: { kind: 'Cancelled' } } });
    expect((await svc.call('DELETE', `/v1/runs/${spin.json.id}`)).status).toBe(409);

    const list = await svc.call('GET', '/v1/runs');
    expect(list.json.runs[0]).toMatchObject({ id: spin.json.id, state: 'done', status: 'failed', error_kind: 'Cancelled' });
    expect(list.json.runs[1]).toMatchObject({ id: quick.json.id, status: 'succeeded' });
  }, 120_000);

  it('serves /metrics in the exposition format, with counters that match the runs made', async () => {
    const r = await svc.call('GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parseMetrics(r.text);
    expect(m.get('pawl_runs_total{result="succeeded"}')).toBe(runsMade - 1);
    expect(m.get('pawl_runs_total{result="Cancelled"}')).toBe(1);
    expect(m.get('pawl_run_duration_seconds_count')).toBe(runsMade);
    expect(m.get('pawl_startup_seconds_count')).toBe(runsMade);
    expect(m.get('pawl_peak_memory_bytes_count')).toBe(runsMade);
    expect(m.get('pawl_pool_hits_total')! + m.get('pawl_pool_misses_total')!).toBe(runsMade);
    expect(m.get('pawl_queue_length')).toBe(0);
    expect(m.get('pawl_runs_in_progress')).toBe(0);
    expect(m.get('pawl_startup_failures_total')).toBe(0);
    expect(m.has('pawl_cleanup_failures_total')).toBe(true);
    expect(m.has('pawl_pool_sandboxes')).toBe(true);
    // promtool lints the exposition too, where it is installed (apt package prometheus; CI has it).
    if ((await execa('promtool', ['--version'], { reject: false })).exitCode === 0 || process.env.CI) {
      // prom-client's own process metrics (pawl_process_*) are named its way; lint pawl's.
      const ours = r.text.split('\n').filter((l) => !/pawl_process_/.test(l)).join('\n');
      const lint = await execa('promtool', ['check', 'metrics'], { input: ours, reject: false });
      expect(lint.stdout + lint.stderr).toBe('');
      expect(lint.exitCode).toBe(0);
    }
  }, 30_000);
});

describe('pawl serve, results held in memory', () => {
  it('keeps finished results within --result-memory, the oldest dropped first, the newest always', async () => {
    // Each stored result is held as JSON; 16 MiB outputs took the service to its heap limit.
    const svc = await startService(join(work, 'mem.sock'), host, ['--pool-size', '0', '--result-memory', '1MB']);
    try {
      const big = { source: 'function(input) { return "x".repeat(input.n); }' };
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await svc.call('POST', '/v1/runs', { task: big, input: { n: 450_000 } });
        expect(r.json.status).toBe('succeeded');
        ids.push(r.headers['x-pawl-run-id'] as string);
      }
      // Two of 450 KB fit in 1 MB, three do not: the first went.
      expect((await svc.call('GET', `/v1/runs/${ids[0]}`)).status).toBe(404);
      for (const id of ids.slice(1)) expect((await svc.call('GET', `/v1/runs/${id}`)).json).toMatchObject({ state: 'done', result: { status: 'succeeded' } });
      // One larger than the whole budget is still kept, alone.
      const huge = await svc.call('POST', '/v1/runs', { task: big, input: { n: 1_500_000 } });
      const hugeId = huge.headers['x-pawl-run-id'] as string;
      expect((await svc.call('GET', `/v1/runs/${hugeId}`)).json.result.output).toHaveLength(1_500_000);
      for (const id of ids) expect((await svc.call('GET', `/v1/runs/${id}`)).status).toBe(404);
      // A run submitted meanwhile drops nothing until it has a result of its own.
      const slow = await svc.call('POST', '/v1/runs', { task: { source: 'function(i) { return new Promise((r) => setTimeout(() => r(1), 1500)); }' }, input: {}, wait: false });
      expect(slow.status).toBe(202);
      expect((await svc.call('GET', `/v1/runs/${hugeId}`)).status).toBe(200);
    } finally {
      svc.proc.kill('SIGTERM');
      expect(await svc.exited).toBe(0);
    }
  }, 120_000);
});

describe('pawl serve, a client that goes away mid-run', () => {
  it('cancels nothing: the run completes, its result stays retrievable, and nothing is left', async () => {
    // No warm sandboxes: after the run, any cgroup, run dir or process left would be a leak.
    const svc = await startService(join(work, 'leak.sock'), host, ['--task-root', roots, '--pool-size', '0']);
    try {
      await new Promise<void>((resolve) => {
        const req = httpRequest({ socketPath: svc.socket, method: 'POST', path: '/v1/runs', headers: { 'content-type': 'application/json' } });
        req.on('error', () => resolve());
        req.end(JSON.stringify({ task: SLEEP, input: { ms: 1500 } }));
        // Gone once the run is under way.
        void until('the run to start', async () => (await svc.call('GET', '/v1/runs')).json.runs.length > 0).then(() => {
          req.destroy();
          resolve();
        });
      });
      const id = (await svc.call('GET', '/v1/runs')).json.runs[0].id;
      expect((await svc.call('GET', `/v1/runs/${id}`)).json.state).toBe('running');
      await until('the run to end', async () => (await svc.call('GET', `/v1/runs/${id}`)).json.state !== 'running');
      expect((await svc.call('GET', `/v1/runs/${id}`)).json).toMatchObject({ state: 'done', result: { status: 'succeeded', output: { slept: 1500 } } });
      // The pool hands a result back before the run's teardown, which counts as live until done.
      await until('its teardown to end', async () => (await svc.call('GET', '/healthz')).json.pool.live === 0);
      await noLeftovers();
    } finally {
      svc.proc.kill('SIGTERM');
      await svc.exited;
    }
  }, 120_000);
});

describe('pawl serve, SIGTERM', () => {
  it('stops accepting, lets a short run finish, kills a long one at the deadline and reports it', async () => {
    const svc = await startService(join(work, 'drain.sock'), host, ['--task-root', roots, '--pool-size', '0', '--drain-timeout', '10s']);
    const short = svc.call('POST', '/v1/runs', { task: SLEEP, input: { ms: 1000 } });
    const long = svc.call('POST', '/v1/runs', { task: SLEEP, input: { ms: 120_000 } });
    await until('both runs to run', async () => (await svc.call('GET', '/healthz')).json.pool.live === 2);
    svc.proc.kill('SIGTERM');
    await until('the service to drain', async () => svc.events().some((e) => e.event === 'draining'));
    // New requests are refused: the socket is gone.
    await expect(call(svc.socket, 'GET', '/healthz')).rejects.toThrow(/ENOENT|ECONNREFUSED/);
    const [s, l] = await Promise.all([short, long]);
    expect(s.json, s.text).toMatchObject({ status: 'succeeded', output: { slept: 1000 } });
    expect(l.json).toMatchObject({ status: 'failed', error: { kind: 'Cancelled' } });
    expect(await svc.exited).toBe(0);
    const killed = svc.events().filter((e) => e.event === 'killed_at_drain');
    expect(killed).toEqual([expect.objectContaining({ id: l.headers['x-pawl-run-id'], task: SLEEP })]);
    await noLeftovers();
  }, 120_000);
});

describe('pawl serve over TCP', () => {
  it('is refused without a token file', async () => {
    const r = await execa('node', [CLI, 'serve', '--socket', join(work, 'tcp0.sock'), '--listen', '127.0.0.1:0'], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--listen needs --token-file/);
  });

  it('refuses a token file others can read', async () => {
    const file = join(work, 'open-token');
    writeFileSync(file, 'a-token-of-some-length-123', { mode: 0o644 });
    const r = await execa('node', [CLI, 'serve', '--socket', join(work, 'tcp1.sock'), '--listen', '127.0.0.1:0', '--token-file', file], { reject: false, env: { PAWL_CGROUP_PARENT: host.cgroupParent } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/readable by others.*chmod 600/);
  });

  it('answers only a client with the bearer token, and takes a new token on SIGHUP', async () => {
    const file = join(work, 'token');
    writeFileSync(file, 'first-token-0123456789\n', { mode: 0o600 });
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const svc = await startService(join(work, 'tcp.sock'), host, ['--listen', `127.0.0.1:${port}`, '--token-file', file, '--pool-size', '0']);
    const get = async (token?: string) => (await fetch(`http://127.0.0.1:${port}/v1/runs`, { headers: token ? { authorization: `Bearer ${token}` } : {} })).status;
    try {
      expect(await get()).toBe(401);
      expect(await get('wrong-token-0123456789')).toBe(401);
      expect(await get('first-token-0123456789')).toBe(200);
      writeFileSync(file, 'second-token-0123456789\n');
      svc.proc.kill('SIGHUP');
      await until('the reload', async () => svc.events().some((e) => e.event === 'reloaded'), 10_000);
      expect(await get('first-token-0123456789')).toBe(401);
      expect(await get('second-token-0123456789')).toBe(200);
    } finally {
      svc.proc.kill('SIGTERM');
      await svc.exited;
    }
  }, 60_000);
});

describe('pawl serve --config (the operator security.yaml)', () => {
  it("takes each task's policy from security.yaml, writes an audit line per run, and reads the file again on SIGHUP", async () => {
    const config = join(work, 'security.yaml');
    const audit = join(work, 'audit.log');
    const yaml = (mb: number) => `security:\n  task_policies:\n    inline:\n      trust_level: limited\n      resource_limits:\n        max_memory_mb: ${mb}\n`;
    writeFileSync(config, yaml(96));
    const svc = await startService(join(work, 'config.sock'), host, ['--config', config, '--audit-log', audit, '--pool-size', '0']);
    try {
      // 120 MB of live buffers: over the task policy's 96 MB, under the 256 MB it is raised to.
      const hungry = { source: 'function(input) { const keep = []; for (let i = 0; i < 120; i++) keep.push(Buffer.alloc(1 << 20, 1)); return { kept: keep.length }; }' };
      const small = await svc.call('POST', '/v1/runs', { task: hungry, input: {} });
      expect(small.status, small.text).toBe(200);
      expect(small.json).toMatchObject({ status: 'failed', error: { kind: 'ResourceExhausted' } });
      writeFileSync(config, yaml(256));
      svc.proc.kill('SIGHUP');
      await until('the reload', async () => svc.events().some((e) => e.event === 'reloaded'));
      const big = await svc.call('POST', '/v1/runs', { task: hungry, input: {} });
      expect(big.json, big.text).toMatchObject({ status: 'succeeded', output: { kept: 120 } });
      const lines = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      const runs = lines.filter((l) => l.event === 'run');
      expect(runs.map((l) => l.run_id)).toEqual([small.json.id, big.json.id]);
      expect(runs.map((l) => l.result_kind)).toEqual(['ResourceExhausted', 'Succeeded']);
    } finally {
      svc.proc.kill('SIGTERM');
      expect(await svc.exited).toBe(0);
    }
  }, 120_000);

  it('refuses to start on a bad security.yaml, naming the path in the document', async () => {
    const config = join(work, 'bad.yaml');
    writeFileSync(config, 'security:\n  task_policies:\n    inline:\n      network_policy:\n        mode: sideways\n');
    const r = await execa('node', [CLI, 'serve', '--socket', join(work, 'bad.sock'), '--config', config], { reject: false, timeout: 30_000 });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('security.task_policies.inline.network_policy.mode');
  });
});
