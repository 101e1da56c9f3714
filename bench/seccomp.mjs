#!/usr/bin/env node
// Seccomp benchmarks: how long pawl takes to build a filter, and what the filter costs at run
// time (a syscall-heavy loop inside bwrap, with and without it, as a ratio).
//
//   npm run build && node bench/seccomp.mjs        (writes bench/results/seccomp.json)
//
// Run time is measured inside the sandboxed process (ns per call), so bwrap's start-up is not
// counted; each figure is the median of RUNS sandbox runs.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolvePolicy } from '../dist/config/resolve.js';
import { compileBpf } from '../dist/seccomp/compile.js';
import { seccompPlan } from '../dist/seccomp/index.js';
import { shippedProfile } from '../dist/seccomp/profiles.js';
import { hostTarget, resolveProfile } from '../dist/seccomp/resolve.js';
import { SeccompProfile } from '../dist/config/seccomp.js';

const RUNS = Number(process.env.RUNS ?? 11);
const COMPILES = 50;
const CALLS = 2_000_000;
const STAT_CALLS = 200_000;
const PODMAN = '/usr/share/containers/seccomp.json';
const here = fileURLToPath(new URL('.', import.meta.url));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const time = (fn) => {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
};

// 0. What a run pays: the first plan of the process (loads libseccomp, reads and validates the
// shipped JSON, resolves, compiles), then a cache hit.
const policy = resolvePolicy({ trustLevel: 'limited' });
let t0 = process.hrtime.bigint();
await seccompPlan(policy);
const firstPlanMs = Number(process.hrtime.bigint() - t0) / 1e6;
t0 = process.hrtime.bigint();
await seccompPlan(policy);
const cachedPlanMs = Number(process.hrtime.bigint() - t0) / 1e6;

const profiles = { 'pawl-untrusted': shippedProfile('untrusted'), 'pawl-limited': shippedProfile('limited') };
profiles.podman = SeccompProfile.parse(JSON.parse(readFileSync(PODMAN, 'utf8')));

// 1. Build time: resolve (names through libseccomp's tables) + compile, no cache.
const compile = [];
for (const [name, profile] of Object.entries(profiles)) {
  const resolveMs = [];
  const compileMs = [];
  let bpf;
  for (let i = 0; i < COMPILES; i++) {
    let resolved;
    resolveMs.push(time(() => (resolved = resolveProfile(profile, hostTarget()).profile)));
    compileMs.push(time(() => (bpf = compileBpf(resolved))));
  }
  const ms = (xs) => Number(median(xs).toFixed(3));
  compile.push({ profile: name, resolve_ms: ms(resolveMs), compile_ms: ms(compileMs), instructions: bpf.length / 8 });
}

// 2. Run-time cost inside bwrap.
const dir = mkdtempSync(join(tmpdir(), 'pawl-bench-seccomp-'));
const bin = join(dir, 'bin');
mkdirSync(bin);
execFileSync('gcc', ['-static', '-O2', '-o', join(bin, 'loop'), join(here, 'seccomp-loop.c')]);
writeFileSync(join(bin, 'stat.js'), `
const fs = require('fs'); const n = Number(process.argv[2]);
for (let i = 0; i < 20000; i++) fs.statSync('/tmp');
const t = process.hrtime.bigint();
for (let i = 0; i < n; i++) fs.statSync('/tmp');
console.log((Number(process.hrtime.bigint() - t) / n).toFixed(2));
`);
const filters = {
  none: null,
  'pawl-limited (binary tree)': compileBpf(resolveProfile(profiles['pawl-limited'], hostTarget()).profile, 2),
  'pawl-limited (linear)': compileBpf(resolveProfile(profiles['pawl-limited'], hostTarget()).profile, 1),
  'pawl-untrusted (binary tree)': compileBpf(resolveProfile(profiles['pawl-untrusted'], hostTarget()).profile, 2),
  'podman (binary tree)': compileBpf(resolveProfile(profiles.podman, hostTarget()).profile, 2),
};
function sandboxed(argv, bpf) {
  const args = ['--unshare-all', '--die-with-parent', '--new-session', '--uid', '1000', '--gid', '1000', '--cap-drop', 'ALL',
    '--ro-bind', '/usr', '/usr', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--proc', '/proc', '--dev', '/dev',
    '--tmpfs', '/tmp', '--ro-bind', bin, '/b', ...(bpf ? ['--seccomp', '9'] : []), '--', ...argv];
  let fd = null;
  if (bpf) {
    const f = join(dir, 'f.bpf');
    writeFileSync(f, bpf);
    fd = openSync(f, 'r');
  }
  const r = spawnSync('/usr/bin/bwrap', args, { env: {}, stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', fd ?? 'ignore'], encoding: 'utf8' });
  if (fd !== null) closeSync(fd);
  if (r.status !== 0) throw new Error(`sandbox failed (${r.status}): ${r.stderr}`);
  return Number(r.stdout.trim());
}
// Interleaved (every filter once per round) so that drift of the machine hits all alike.
const LOOPS = { getppid: ['/b/loop', 'getppid', String(CALLS)], ioctl: ['/b/loop', 'ioctl', String(CALLS)], node_statSync: ['/usr/bin/node', '/b/stat.js', String(STAT_CALLS)] };
const samples = Object.fromEntries(Object.keys(filters).map((f) => [f, Object.fromEntries(Object.keys(LOOPS).map((l) => [l, []]))]));
for (let round = 0; round < RUNS; round++) {
  for (const [name, bpf] of Object.entries(filters)) {
    for (const [loop, argv] of Object.entries(LOOPS)) samples[name][loop].push(sandboxed(argv, bpf));
  }
}
rmSync(dir, { recursive: true, force: true });
const runtime = Object.entries(filters).map(([name, bpf]) => {
  const row = { filter: name, instructions: bpf ? bpf.length / 8 : 0 };
  for (const loop of Object.keys(LOOPS)) row[`${loop}_ns`] = median(samples[name][loop]);
  return row;
});
for (const r of runtime) {
  for (const loop of Object.keys(LOOPS)) r[`${loop}_ratio`] = Number((r[`${loop}_ns`] / runtime[0][`${loop}_ns`]).toFixed(3));
}

console.log(`\nseccompPlan(): first in the process ${firstPlanMs.toFixed(2)} ms, cached ${cachedPlanMs.toFixed(3)} ms`);
console.log(`Build time (median of ${COMPILES}):`);
console.table(compile);
console.log(`Run time inside bwrap, ns per call (median of ${RUNS} runs; ${CALLS} getppid or ioctl(FIONBIO), ${STAT_CALLS} fs.statSync per run):`);
console.table(runtime);
mkdirSync(join(here, 'results'), { recursive: true });
const out = join(here, 'results', 'seccomp.json');
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), runs: RUNS, plan_ms: { first: firstPlanMs, cached: cachedPlanMs }, compile, runtime }, null, 2)}\n`);
console.log(`wrote ${out}`);
