#!/usr/bin/env node
// pawl's benchmark, all in ONE run on one machine so that ratios compare like with like:
// node -e 0; bare node running the harness (no sandbox); in-process node:vm; the pawl CLI cold
// (`pawl run`, `pawl --help`), and `pawl run --server` with a `pawl serve` running; the library cold through bwrap, runc and crun; the warm pool;
// reuse mode; docker when an engine runs. Median/p95/p99, throughput at concurrency 1/2/8, supervisor CPU
// and RSS, a trivial task's cgroup peak. Prints a table with each goal met or not, and writes
// bench/results/bench.json and bench/results/bench.svg.
//   npm run bench            (as root; BENCH_RUNS=N to change the sample count, default 20)
//   BENCH_ONLY=pool,monitor node bench/bench.mjs   (only these sections; prints their rows and the
//   goals they measure, writes nothing). Sections: cli, cold (bare/in-process/library cold rows),
//   pool (warm pool dispatch-to-result), reuse, tput (throughput, supervisor CPU), monitor
//   (supervisor CPU while one sandbox sleeps), peak, engine (`docker run` when an engine runs, else
//   `podman run`, of pawl's own rootfs imported as an image: bench/engine.mjs; its goals need cli
//   and cold too: BENCH_ONLY=engine,cli,cold).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import vm from 'node:vm';
import { hostConfig, runTask, Pool, collectGarbage, ensureRootfs, teardownsSettled } from '../dist/index.js';
import { loadTask } from '../dist/task/load.js';
import { pct, r1, summary, throughput, timeRuns } from './stats.mjs';
import { latencyChart } from './svg.mjs';
import { cleanupEngine, ensureImage, pickEngine, runArgv, taskScript } from './engine.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const SECTIONS = ['cli', 'cold', 'pool', 'reuse', 'tput', 'monitor', 'peak', 'engine'];
const ONLY = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : null;
for (const o of ONLY ?? []) if (!SECTIONS.includes(o)) throw new Error(`BENCH_ONLY: unknown section ${o} (sections: ${SECTIONS.join(', ')})`);
const want = (section) => !ONLY || ONLY.includes(section);
const root = new URL('..', import.meta.url).pathname;
const CLI = join(root, "dist", "bundle", "pawl.mjs"); // the shipped bin
const HARNESS = join(root, 'dist', 'task', 'harness.cjs');
const host = hostConfig({ cgroupParent: 'pawl-bench' });
const cliEnv = { ...process.env, PAWL_CGROUP_PARENT: 'pawl-bench' };
const add = await loadTask(join(root, 'examples', 'add'));
const cpu50 = await loadTask(join(root, 'bench', 'tasks', 'cpu50'));
const INPUT = { num1: 1, num2: 2 };
const load0 = loadavg();
const log = (s) => process.stderr.write(`${s}\n`);

function proc(argv, env = process.env) {
  return new Promise((resolve, reject) => {
    const c = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (b) => (err = (err + b).slice(-2000)));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${argv.join(' ')} exited ${code}: ${err.trim().split('\n').at(-1)}`))));
  });
}

const request = (task, input) => JSON.stringify({ source: task.source, filename: task.filename, input, context: { executionId: 'bench' }, network: 'none' });

/**
 * A harness process with its protocol on fds 3 and 4 (the request in, the reply out). Resolves
 * at its exit with the time its reply came (an engine's `run --rm` exits well after that).
 */
function harness(argv, env, req) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    let reply = '';
    let err = '';
    let replyMs;
    child.stdio[4].on('data', (b) => (reply += b));
    child.stdio[4].on('end', () => (replyMs = performance.now() - t0));
    child.stderr.on('data', (b) => (err = (err + b).slice(-2000)));
    // A process that dies before reading its request (an engine that failed) resets the pipes:
    // its exit code says what happened.
    child.stdio[3].on('error', () => {});
    child.stdio[4].on('error', () => {});
    child.stdio[3].end(req);
    child.on('error', reject);
    child.on('close', (code) => {
      let ok = false;
      try {
        // The harness's first byte is its ready byte (task/protocol.ts Ready), then the reply.
        ok = JSON.parse(reply.replace(/^\x06/, '')).ok === true;
      } catch { /* no reply */ }
      if (ok && code === 0) resolve({ replyMs });
      else reject(new Error(`${argv.at(-1)} exited ${code}: ${reply || err.trim().split('\n').at(-1)}`));
    });
  });
}

/** The harness and its protocol, no sandbox, empty environment. */
const bare = (task, input) => harness([process.execPath, HARNESS], {}, request(task, input));

/** The plan's "current performance": the task's function in a fresh vm context in this process. */
function inProcess(task, input) {
  const fn = vm.runInNewContext(`(${task.source.trim().replace(/;\s*$/, '')})`, { console: { log() {} }, Date }, { filename: task.filename });
  return Promise.resolve(fn(input, { executionId: 'bench' }));
}

async function sandboxed(task, input, runtime) {
  const r = await runTask(task, { input, host, policy: { runtime } });
  if (r.status !== 'succeeded') throw new Error(`${runtime}: ${JSON.stringify(r.error)}`);
  return r;
}

const rows = [];
// The throughput goals' concurrency: the machine's cores (1, 2 or 8).
const cores = availableParallelism();
const cc = cores >= 8 ? 8 : cores >= 2 ? 2 : 1;
const row = (name, label, ms, extra = {}) => {
  const r = { name, label, ...(ms ? summary(ms) : { runs: 0, median_ms: null, p95_ms: null, p99_ms: null }), ...extra };
  rows.push(r);
  log(`${label}: ${r.median_ms ?? r.note} ms`);
  return r;
};

// Warm-up: the rootfs in the page cache, cgroup parents, seccomp plans.
for (const rt of want('cold') ? ['bwrap', 'runc', 'crun'] : ['bwrap']) await sandboxed(add, INPUT, rt).catch((e) => log(`warm-up ${rt}: ${e.message}`));

/**
 * Reuse mode (trusted, opt-in): latency of a run in a sandbox that already ran the task (the
 * first, which waits for node to boot, is left out), and throughput at concurrency c against
 * in-process node:vm. One pool per measurement, maxRuns above the run count.
 */
async function reuseBench(concurrency) {
  const opts = { trustLevel: 'trusted' };
  for (const [tname, task, input] of [['trivial', add, INPUT], ['cpu50', cpu50, { ms: 50 }]]) {
    const rp = new Pool({ size: 1, maxConcurrent: 10, reuse: { maxRuns: 10_000 } }, host);
    const ms = [];
    for (let i = 0; i <= RUNS; i++) {
      const t0 = performance.now();
      const r = await rp.run(task, { ...opts, input });
      if (r.status !== 'succeeded') throw new Error(`reuse: ${JSON.stringify(r.error)}`);
      if (i > 0) ms.push(performance.now() - t0);
    }
    await rp.close();
    row(`reuse-${tname}`, `pawl reuse mode, dispatch to result, ${tname}`, ms);
  }
  const out = {};
  for (const c of concurrency) {
    const rp = new Pool({ size: c, maxConcurrent: c * 2, reuse: { maxRuns: 10_000 } }, host);
    await throughput(c * 2, c, () => rp.run(add, { ...opts, input: INPUT })); // every sandbox booted
    out[c] = { reuse: await throughput(Math.max(16, RUNS) * 4, c, () => rp.run(add, { ...opts, input: INPUT })), vm: await throughput(Math.max(16, RUNS) * 10, c, () => inProcess(add, INPUT)) };
    await rp.close();
    log(`reuse throughput c=${c}: ${JSON.stringify(out[c])} (${ratio(out[c].reuse, out[c].vm)}x in-process)`);
  }
  // The same at the goal's concurrency for the 50 ms CPU task: a run's own work beside pawl's.
  const rp = new Pool({ size: cc, maxConcurrent: cc * 2, reuse: { maxRuns: 10_000 } }, host);
  await throughput(cc * 2, cc, () => rp.run(cpu50, { ...opts, input: { ms: 50 } }));
  out.cpu50 = { c: cc, reuse: await throughput(Math.max(16, RUNS) * 2, cc, () => rp.run(cpu50, { ...opts, input: { ms: 50 } })), vm: await throughput(Math.max(16, RUNS), cc, () => inProcess(cpu50, { ms: 50 })) };
  await rp.close();
  log(`reuse throughput, cpu50, c=${cc}: ${JSON.stringify(out.cpu50)}`);
  return out;
}
const ratio = (a, b) => (a && b ? Math.round((a / b) * 100) / 100 : null);

// 1. Start-up from the shell.
if (want('cli')) {
  row('node', '`node -e 0`', await timeRuns(RUNS, () => proc([process.execPath, '-e', '0'])));
  row('cli-help', '`pawl --help`', await timeRuns(RUNS, () => proc([process.execPath, CLI, '--help'], cliEnv)));
  row('cli-run', '`pawl run examples/add` (CLI cold)', await timeRuns(RUNS, () => proc([process.execPath, CLI, 'run', join(root, 'examples', 'add'), '--input', JSON.stringify(INPUT)], cliEnv)));
  // The same run handed to a `pawl serve` on this machine: the CLI loads only its http client and
  // the run takes a warm sandbox from the service's pool (README "Service": `pawl run --server`).
  row('cli-server', '`pawl run examples/add --server` (`pawl serve` running)', await withService((sock) =>
    timeRuns(RUNS, () => proc([process.execPath, CLI, 'run', join(root, 'examples', 'add'), '--server', sock, '--input', JSON.stringify(INPUT)], cliEnv))));
}

/** A `pawl serve` (the shipped bin) for the duration of fn, on a socket of its own. */
async function withService(fn) {
  const { mkdtempSync } = await import('node:fs');
  const dir = mkdtempSync('/tmp/pawl-bench-serve-');
  const sock = join(dir, 'pawl.sock');
  const svc = spawn(process.execPath, [CLI, 'serve', '--socket', sock, '--task-root', join(root, 'examples'), '--pool-size', '2'], { env: cliEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => svc.on('close', resolve));
  try {
    await new Promise((resolve, reject) => {
      let err = '';
      svc.stderr.on('data', (c) => {
        err += c;
        if (err.includes('"event":"listening"')) resolve();
      });
      void exited.then(() => reject(new Error(`pawl serve ended: ${err}`)));
    });
    return await fn(sock);
  } finally {
    svc.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

// 2. One task, trivial and 50 ms of CPU.
for (const [tname, task, input] of want('cold') ? [['trivial', add, INPUT], ['cpu50', cpu50, { ms: 50 }]] : []) {
  row(`bare-${tname}`, `bare node + harness, ${tname}`, await timeRuns(RUNS, () => bare(task, input)));
  row(`vm-${tname}`, `in-process node:vm, ${tname}`, await timeRuns(RUNS, () => inProcess(task, input)));
  for (const rt of tname === 'trivial' ? ['bwrap', 'runc', 'crun'] : ['bwrap']) {
    let ms = null;
    let note;
    try {
      // Timed to the result, which comes before the run's teardown (runTask's default); each run
      // starts once the last one's teardown has ended, so none is timed beside another's.
      ms = await timeRuns(RUNS, () => sandboxed(task, input, rt), teardownsSettled);
    } catch (e) {
      note = `failed: ${e.message.slice(0, 80)}`;
    }
    row(`lib-${rt}-${tname}`, `pawl library cold, ${rt}, ${tname}`, ms, note ? { note } : {});
  }
}

// 3. Warm pool: dispatch-to-result, one task at a time, each after the pool has refilled (and
// the last run's teardown has ended: a warm sandbox and a quiet supervisor, as the goal says).
const pool = new Pool({ size: 2, maxConcurrent: 10 }, host);
for (const [tname, task, input] of want('pool') ? [['trivial', add, INPUT], ['cpu50', cpu50, { ms: 50 }]] : []) {
  const keyPolicy = await pool.warmTask(task);
  const ms = [];
  for (let i = 0; i <= RUNS; i++) {
    // The pool keeps up: warm sandboxes wait, and every live one is idle (no run, no teardown; the
    // other task's warm sandboxes count as live too).
    await waitFor(() => { const s = pool.stats(); return pool.idleFor(keyPolicy) >= 2 && s.live === s.idle; });
    const t0 = performance.now();
    const r = await pool.run(task, { input });
    if (r.status !== 'succeeded') throw new Error(`pool: ${JSON.stringify(r.error)}`);
    if (i > 0) ms.push(performance.now() - t0);
  }
  row(`pool-${tname}`, `pawl warm pool, dispatch to result, ${tname}`, ms);
}
await pool.close();
const reuseTput = want('reuse') ? await reuseBench([1, 2, 8]) : null;

// 4. A container engine running the same node in pawl's own rootfs: `node -e 0`, then the trivial
// task end to end (podman: through pawl's harness on the same fds; docker cannot pass fds, so
// `node -e` of the same function). Measured against docker only when an engine runs, else podman.
const engine = want('engine') ? await pickEngine() : null;
if (engine && engine.docker !== 'running') row('docker', 'docker run node -e 0', null, { note: engine.docker });
if (engine && !engine.name) row('engine', 'podman run node -e 0', null, { note: engine.why });
if (engine?.name) {
  try {
    await engineRows(engine);
  } finally {
    const left = await cleanupEngine(engine);
    if (left.length) log(`${engine.name}: left behind: ${left.join(', ')}`);
  }
}

async function engineRows(e) {
  let image;
  try {
    image = await ensureImage(e, await ensureRootfs(host));
  } catch (err) {
    row(`${e.name}-node`, `${e.name} run node -e 0`, null, { note: `image import failed: ${err.message.slice(0, 160)}` });
    return;
  }
  const nodeArgv = runArgv(e, image, ['/usr/bin/node', '-e', '0']);
  const taskArgv = e.fds ? runArgv(e, image, ['/usr/bin/node', '/opt/pawl/harness.cjs'], 2) : runArgv(e, image, ['/usr/bin/node', '-e', taskScript(add, INPUT)]);
  const show = (argv) => argv.map((a) => (/[\s"'$&|]/.test(a) ? `'${a.replace(/'/g, `'\\''`)}'` : a)).join(' ');
  const measure = async (name, label, argv, fn) => {
    log(`${label}: ${show(argv)}`);
    const replies = [];
    let ms = null;
    let note;
    try {
      ms = await timeRuns(RUNS, async () => { const r = await fn(); if (r?.replyMs) replies.push(r.replyMs); });
    } catch (err) {
      note = `failed: ${err.message.replace(/^[\s\S]*? exited /, 'exited ').slice(0, 200)}`;
    }
    // The first reply is timeRuns' untimed warm-up.
    const r = row(name, label, ms, { engine: e.name, engine_version: e.version, command: show(argv), ...(replies.length > 1 ? { reply_median_ms: summary(replies.slice(1)).median_ms } : {}), ...(note ? { note } : {}) });
    if (r.reply_median_ms) log(`${label}: the reply came at ${r.reply_median_ms} ms (median), the engine exited at ${r.median_ms}`);
  };
  await measure(`${e.name}-node`, `${e.name} run node -e 0`, nodeArgv, () => proc(nodeArgv));
  await measure(`${e.name}-task`, `${e.name} run of examples/add (${e.fds ? "pawl's harness" : 'node -e'})`, taskArgv, () => (e.fds ? harness(taskArgv, process.env, request(add, INPUT)) : proc(taskArgv)));
}

// 5. Throughput (tasks/s) at concurrency 1, 2, 8: process per task, single-use pool, in-process.
const TOTAL = Math.max(16, RUNS);
const tput = {};
for (const c of want('tput') ? [1, 2, 8] : []) {
  const p = new Pool({ size: c, maxConcurrent: c * 2 }, host);
  const keyPolicy = await p.warmTask(add);
  await waitFor(() => p.idleFor(keyPolicy) >= c);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const poolTput = await throughput(TOTAL, c, () => p.run(add, { input: INPUT }));
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  await p.close();
  const cpuPerTask = r1((cpu.user + cpu.system) / 1000 / TOTAL);
  tput[c] = {
    bare: await throughput(TOTAL, c, () => bare(add, INPUT)),
    pool: poolTput,
    cold_bwrap: await throughput(TOTAL, c, () => sandboxed(add, INPUT, 'bwrap'), teardownsSettled),
    vm: await throughput(TOTAL * 10, c, () => inProcess(add, INPUT)),
    supervisor_cpu_pct_pool: r1(((cpu.user + cpu.system) / 1000 / wall) * 100),
    supervisor_cpu_ms_per_task: cpuPerTask,
  };
  log(`throughput c=${c}: ${JSON.stringify(tput[c])}`);
}

// The single-use goal's concurrency again, for the 50 ms CPU task.
let tputCpu50 = null;
if (want('tput')) {
  const p = new Pool({ size: cc, maxConcurrent: cc * 2 }, host);
  const keyPolicy = await p.warmTask(cpu50);
  await waitFor(() => p.idleFor(keyPolicy) >= cc);
  tputCpu50 = { c: cc, pool: await throughput(TOTAL, cc, () => p.run(cpu50, { input: { ms: 50 } })) };
  await p.close();
  tputCpu50.bare = await throughput(TOTAL, cc, () => bare(cpu50, { ms: 50 }));
  log(`throughput, cpu50, c=${cc}: ${JSON.stringify(tputCpu50)}`);
}

// 6. Monitoring cost: supervisor CPU while one sandbox sleeps 3 s (polling cgroup stats every 100 ms).
let monitorPct = null;
let slept = null;
if (want('monitor')) {
  const sleepDir = await sleepTask();
  const sleeper = await loadTask(sleepDir);
  rmSync(sleepDir, { recursive: true, force: true }); // loaded: the source is in memory now
  // Sampled from 1 s to 2.5 s into the run: the steady watch, not start-up and reap.
  let cpuA, tA;
  setTimeout(() => { cpuA = process.cpuUsage(); tA = performance.now(); }, 1000);
  setTimeout(() => { const c = process.cpuUsage(cpuA); monitorPct = r1(((c.user + c.system) / 1000 / (performance.now() - tA)) * 100); }, 2500);
  slept = await runTask(sleeper, { host, input: {} });
}
const peak = want('peak') ? (await sandboxed(add, INPUT, 'bwrap')).usage.peak_memory_bytes : null;
const rss = process.memoryUsage().rss;
await teardownsSettled();
await collectGarbage(host);

// Goals (issue 13), as ratios measured in this run.
const get = (n) => rows.find((r) => r.name === n) ?? {};
const engineName = !engine ? 'docker run' : engine.name === 'docker' ? 'docker run' : engine.name ? `podman run (docker: ${engine.docker === 'not installed' ? 'not installed' : 'no engine here'})` : 'docker/podman run';
const engineMissing = !engine ? 'not measured (section engine not run)' : !engine.name ? `not measured (${engine.why})` : !get(`${engine.name}-task`).median_ms ? `not measured (${get(`${engine.name}-task`).note ?? get(`${engine.name}-node`).note ?? 'engine failed'})` : undefined;
const goals = [
  ['`pawl run` median <= 2.5x `node -e 0`', ratio(get('cli-run').median_ms, get('node').median_ms), (v) => v <= 2.5, 'x'],
  ['`pawl run --server` (a `pawl serve` running) median <= 2.5x `node -e 0`', ratio(get('cli-server').median_ms, get('node').median_ms), (v) => v <= 2.5, 'x'],
  ['`pawl --help` median <= 1.3x `node -e 0`', ratio(get('cli-help').median_ms, get('node').median_ms), (v) => v <= 1.3, 'x'],
  ['library cold bwrap median <= 1.25x bare harness', ratio(get('lib-bwrap-trivial').median_ms, get('bare-trivial').median_ms), (v) => v <= 1.25, 'x'],
  ['library cold bwrap p95 <= 1.5x bare harness p95', ratio(get('lib-bwrap-trivial').p95_ms, get('bare-trivial').p95_ms), (v) => v <= 1.5, 'x'],
  ['warm pool dispatch-to-result median <= 5 ms', get('pool-trivial').median_ms, (v) => v <= 5, 'ms'],
  ['warm pool dispatch-to-result p95 <= 10 ms', get('pool-trivial').p95_ms, (v) => v <= 10, 'ms'],
  [`single-use throughput at concurrency ${cc} >= 90% of bare process-per-task, trivial task`, ratio(tput[cc]?.pool, tput[cc]?.bare), (v) => v >= 0.9, 'x'],
  [`single-use throughput at concurrency ${cc} >= 90% of bare process-per-task, 50 ms CPU task`, ratio(tputCpu50?.pool, tputCpu50?.bare), (v) => v >= 0.9, 'x'],
  [`reuse mode throughput at concurrency ${cc} >= 90% of in-process, trivial task`, ratio(reuseTput?.[cc].reuse, reuseTput?.[cc].vm), (v) => v >= 0.9, 'x'],
  [`reuse mode throughput at concurrency ${cc} >= 90% of in-process, 50 ms CPU task`, ratio(reuseTput?.cpu50.reuse, reuseTput?.cpu50.vm), (v) => v >= 0.9, 'x'],
  ['monitoring < 1% CPU (supervisor, one sandbox sleeping 3 s)', monitorPct, (v) => v < 1, '%'],
  ['trivial task cgroup peak <= 40 MB', peak === null ? null : r1(peak / 2 ** 20), (v) => v <= 40, 'MB'],
  // The engine's run of the same task over pawl's (median / median): pawl is that many times faster.
  [`\`pawl run\` >= 5x faster than ${engineName} of the same task (CLI)`, ratio(get(`${engine?.name}-task`).median_ms, get('cli-run').median_ms), (v) => v >= 5, 'x', engineMissing],
  [`\`pawl run --server\` (a \`pawl serve\` running) >= 5x faster than ${engineName} of the same task (CLI)`, ratio(get(`${engine?.name}-task`).median_ms, get('cli-server').median_ms), (v) => v >= 5, 'x', engineMissing],
  [`library cold bwrap >= 5x faster than ${engineName} of the same task`, ratio(get(`${engine?.name}-task`).median_ms, get('lib-bwrap-trivial').median_ms), (v) => v >= 5, 'x', engineMissing],
].map(([goal, value, ok, unit, missing]) => ({ goal, value: value ?? null, unit, met: value === null || value === undefined ? null : ok(value), ...(value === null || value === undefined ? { missing: missing ?? 'not measured (section not run)' } : {}) }));

const machine = { cpus: cpus().length, model: cpus()[0]?.model, kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), node: process.version, loadavg_before: load0.map(r1), loadavg_after: loadavg().map(r1) };
const lines = [
  `machine: ${machine.cpus} x ${machine.model}, Linux ${machine.kernel}, node ${machine.node}; load average before ${machine.loadavg_before.join(' ')}, after ${machine.loadavg_after.join(' ')}`,
  '',
  '| what | median ms | p95 ms | p99 ms |',
  '|---|---|---|---|',
  ...rows.map((r) => `| ${r.label} | ${r.median_ms ?? r.note} | ${r.p95_ms ?? ''} | ${r.p99_ms ?? ''} |`),
  '',
  '| tasks/s (examples/add) | concurrency 1 | 2 | 8 |',
  '|---|---|---|---|',
  ...['bare', 'pool', 'cold_bwrap', 'vm'].map((k) => `| ${{ bare: 'bare node, process per task', pool: 'pawl warm pool (single use)', cold_bwrap: 'pawl library cold, bwrap', vm: 'in-process node:vm' }[k]} | ${tput[1]?.[k] ?? ''} | ${tput[2]?.[k] ?? ''} | ${tput[8]?.[k] ?? ''} |`),
  `| pawl reuse mode (trusted) | ${reuseTput?.[1].reuse ?? ''} | ${reuseTput?.[2].reuse ?? ''} | ${reuseTput?.[8].reuse ?? ''} |`,
  `| in-process node:vm (beside reuse) | ${reuseTput?.[1].vm ?? ''} | ${reuseTput?.[2].vm ?? ''} | ${reuseTput?.[8].vm ?? ''} |`,
  `| 50 ms CPU task, concurrency ${cc}: bare / pool / reuse / in-process | ${tputCpu50?.bare ?? ''} / ${tputCpu50?.pool ?? ''} / ${reuseTput?.cpu50.reuse ?? ''} / ${reuseTput?.cpu50.vm ?? ''} | | |`,
  `| supervisor CPU % during the pool runs | ${tput[1]?.supervisor_cpu_pct_pool ?? ''} | ${tput[2]?.supervisor_cpu_pct_pool ?? ''} | ${tput[8]?.supervisor_cpu_pct_pool ?? ''} |`,
  `| supervisor CPU ms per pool task | ${tput[1]?.supervisor_cpu_ms_per_task ?? ''} | ${tput[2]?.supervisor_cpu_ms_per_task ?? ''} | ${tput[8]?.supervisor_cpu_ms_per_task ?? ''} |`,
  '',
  `supervisor RSS ${r1(rss / 2 ** 20)} MB; trivial task cgroup peak ${peak === null ? '-' : r1(peak / 2 ** 20)} MB; monitoring CPU ${monitorPct ?? '-'}% (${slept?.status ?? 'not run'})`,
  '',
  '| goal | measured | met |',
  '|---|---|---|',
  ...goals.map((g) => `| ${g.goal} | ${g.value === null ? g.missing : `${g.value}${g.unit === 'x' ? 'x' : ` ${g.unit}`}`} | ${g.met === null ? '-' : g.met ? 'met' : 'not met'} |`),
];
console.log(lines.join('\n'));
if (ONLY) {
  await collectGarbage(host);
  process.exit(0); // a partial run writes no results
}
const out = join(root, 'bench', 'results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'bench.json'), JSON.stringify({ date: new Date().toISOString(), machine, runs: RUNS, rows, throughput: tput, throughput_cpu50: tputCpu50, reuse_throughput: reuseTput, engine: engine && { name: engine.name, version: engine.version ?? null, docker: engine.docker, ...(engine.why ? { why: engine.why } : {}) }, supervisor_rss_bytes: rss, trivial_peak_bytes: peak, monitoring_cpu_pct: monitorPct, goals }, null, 2));
writeFileSync(join(out, 'bench.svg'), latencyChart(rows, `pawl bench ${new Date().toISOString().slice(0, 10)}: ${machine.cpus} cores, load ${machine.loadavg_before[0]}`));
log(`wrote ${join(out, 'bench.json')} and bench.svg`);

async function waitFor(f) {
  while (!f()) await new Promise((r) => setTimeout(r, 5));
}

async function sleepTask() {
  const { mkdtempSync } = await import('node:fs');
  const dir = mkdtempSync('/tmp/pawl-bench-sleep-');
  writeFileSync(join(dir, 'main.js'), 'function() { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000); return {}; }');
  writeFileSync(join(dir, 'metadata.json'), '{"name": "sleep"}');
  return dir;
}
void pct;
