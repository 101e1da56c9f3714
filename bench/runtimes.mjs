#!/usr/bin/env node
// Cold start of a trivial task per runtime backend: pawl runTask through bwrap, runc and crun
// (fresh sandbox, cgroup, reap and cleanup each), beside bare node running the same harness with
// no sandbox. Interleaved in one process so machine noise hits every backend alike. Also splits
// pawl's own timings (prepare / start / run / cleanup medians) per backend. Prints a table and
// writes bench/results/runtimes.json.
//   node bench/runtimes.mjs [runs]        (after npm run build; as root)
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTask, hostConfig } from '../dist/index.js';
import { loadTask } from '../dist/task/load.js';

const RUNS = Number(process.argv[2] ?? 30);
const BACKENDS = ['bwrap', 'runc', 'crun'];
const root = new URL('..', import.meta.url).pathname;
const task = await loadTask(join(root, 'examples', 'add'));
const host = hostConfig({ cgroupParent: 'pawl-bench' });
const request = JSON.stringify({ source: task.source, filename: task.filename, input: { num1: 1, num2: 2 }, context: { executionId: 'bench' }, network: 'none' });

/** The same harness and protocol, no sandbox: node with an empty environment, fds 3 and 4. */
function bare() {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [join(root, 'dist', 'task', 'harness.js')], { env: {}, stdio: ['ignore', 'ignore', 'inherit', 'pipe', 'pipe'] });
    let reply = '';
    child.stdio[4].on('data', (b) => (reply += b));
    child.stdio[3].end(request);
    child.on('exit', () => (JSON.parse(reply).ok ? resolve({ total: performance.now() - t0 }) : reject(new Error(reply))));
  });
}

async function sandboxed(runtime) {
  const t0 = performance.now();
  const r = await runTask(task, { input: { num1: 1, num2: 2 }, host, policy: { runtime } });
  if (r.status !== 'succeeded') throw new Error(`${runtime}: ${JSON.stringify(r.error)}`);
  return { total: performance.now() - t0, ...r.timings_ms };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

const runners = { bare, ...Object.fromEntries(BACKENDS.map((b) => [b, () => sandboxed(b)])) };
for (const run of Object.values(runners)) await run(); // builds/warms the rootfs, cgroup parents, seccomp plans
const samples = Object.fromEntries(Object.keys(runners).map((k) => [k, []]));
for (let i = 0; i < RUNS; i++) for (const [name, run] of Object.entries(runners)) samples[name].push(await run());

const LABEL = {
  bare: 'bare node, same harness, no sandbox',
  bwrap: 'pawl runTask, bwrap',
  runc: 'pawl runTask, runc (create + start)',
  crun: 'pawl runTask, crun (create + start)',
};
const med = (xs, k) => +pct(xs.map((x) => x[k]), 50).toFixed(1);
const rows = Object.entries(samples).map(([name, xs]) => ({
  name,
  runs: xs.length,
  median_ms: med(xs, 'total'),
  p95_ms: +pct(xs.map((x) => x.total), 95).toFixed(1),
  ...(name === 'bare' ? {} : { prepare_ms: med(xs, 'prepare'), start_ms: med(xs, 'start'), run_ms: med(xs, 'run'), cleanup_ms: med(xs, 'cleanup') }),
}));
// The ratio against bare node measured in this same run: the machine's noise hits both alike.
const bareMedian = rows.find((r) => r.name === 'bare').median_ms;
for (const r of rows) r.ratio = +(r.median_ms / bareMedian).toFixed(2);
console.log(`trivial task (examples/add), cold, ${RUNS} runs each, interleaved`);
console.log('| what | median ms | p95 ms | x bare | prepare | start | run | cleanup |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${LABEL[r.name]} | ${r.median_ms} | ${r.p95_ms} | ${r.ratio} | ${r.prepare_ms ?? ''} | ${r.start_ms ?? ''} | ${r.run_ms ?? ''} | ${r.cleanup_ms ?? ''} |`);
const out = join(root, 'bench', 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'runtimes.json'),
  JSON.stringify({ date: new Date().toISOString(), node: process.version, kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), runs: RUNS, rows }, null, 2),
);
