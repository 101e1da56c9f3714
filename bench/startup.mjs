#!/usr/bin/env node
// Cold start of a trivial task: through the library (a fresh bwrap sandbox per run, cgroups,
// rootfs, harness, reap) next to bare `node` running the same harness outside any sandbox, measured
// interleaved in one process so machine noise hits both alike. Prints a table, writes JSON.
//   node bench/startup.mjs [runs]        (npm run bench)
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTask, hostConfig } from '../dist/index.js';
import { loadTask } from '../dist/task/load.js';

const RUNS = Number(process.argv[2] ?? 40);
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
    child.on('exit', () => (JSON.parse(reply).ok ? resolve(performance.now() - t0) : reject(new Error(reply))));
  });
}

async function sandboxed() {
  const t0 = performance.now();
  const r = await runTask(task, { input: { num1: 1, num2: 2 }, host });
  if (r.status !== 'succeeded') throw new Error(JSON.stringify(r.error));
  return performance.now() - t0;
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

await sandboxed(); // builds/warms the rootfs and the cgroup parent: not a cold start of a task
await bare();
const times = { bare: [], sandboxed: [] };
for (let i = 0; i < RUNS; i++) {
  times.bare.push(await bare());
  times.sandboxed.push(await sandboxed());
}
const rows = Object.entries(times).map(([name, xs]) => ({ name, runs: xs.length, median_ms: +pct(xs, 50).toFixed(1), p95_ms: +pct(xs, 95).toFixed(1) }));
const ratio = +(rows[1].median_ms / rows[0].median_ms).toFixed(2);
console.log(`trivial task (examples/add), cold, ${RUNS} runs each, interleaved`);
console.log('| what | median ms | p95 ms |');
console.log('|---|---|---|');
for (const r of rows) console.log(`| ${r.name === 'bare' ? 'bare node, same harness, no sandbox' : 'pawl runTask (bwrap + cgroups)'} | ${r.median_ms} | ${r.p95_ms} |`);
console.log(`ratio sandboxed/bare (median): ${ratio}x`);
const out = join(root, 'bench', 'results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'startup.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), rows, ratio }, null, 2));
