// A/B between two built checkouts of pawl (e.g. before and after a restructure), interleaved so
// that machine noise falls on both alike: library cold run (runTask, bwrap) and the CLI (`pawl run`).
//   node bench/ab.mjs OLD_CHECKOUT NEW_CHECKOUT   (as root; each built with npm run build; N=15 pairs)
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
const [before, after] = process.argv.slice(2);
if (!before || !after) throw new Error('usage: node bench/ab.mjs OLD_CHECKOUT NEW_CHECKOUT');
const trees = { before, after };
const N = Number(process.env.N ?? 15);
const libs = {};
for (const [k, dir] of Object.entries(trees)) libs[k] = await import(join(dir, 'dist', 'index.js'));
const t = { before: { lib: [], cli: [] }, after: { lib: [], cli: [] } };
for (let i = 0; i < N; i++) {
  for (const k of i % 2 ? ['before', 'after'] : ['after', 'before']) {
    const { runTask, hostConfig } = libs[k];
    const host = hostConfig({ cgroupParent: `pawl-ab-${k}` });
    let s = performance.now();
    const r = await runTask(join(trees[k], 'examples', 'add'), { input: { num1: 1, num2: 2 }, host });
    t[k].lib.push(performance.now() - s);
    if (r.status !== 'succeeded') throw new Error(`${k}: ${JSON.stringify(r.error)}`);
    await libs[k].teardownsSettled?.(); // a result that came before its teardown: not timed beside the CLI run
    s = performance.now();
    const c = spawnSync('node', [join(trees[k], 'dist', 'bundle', 'pawl.mjs'), 'run', join(trees[k], 'examples', 'add'), '--input', '{"num1":1,"num2":2}'], { env: { ...process.env, PAWL_CGROUP_PARENT: `pawl-ab-${k}` } });
    t[k].cli.push(performance.now() - s);
    if (c.status !== 0) throw new Error(`${k} cli: ${c.stderr}`);
  }
}
const med = (a) => { const b = [...a].sort((x, y) => x - y); return b[Math.floor(b.length / 2)]; };
console.log(`| path | before median ms | after median ms | after/before |`);
console.log(`|---|---|---|---|`);
for (const p of ['lib', 'cli']) console.log(`| ${p === 'lib' ? 'library runTask, bwrap, cold' : '`pawl run examples/add` (CLI)'} | ${med(t.before[p]).toFixed(0)} | ${med(t.after[p]).toFixed(0)} | ${(med(t.after[p]) / med(t.before[p])).toFixed(2)} |`);
