// Reuse mode on real sandboxes: several runs of one task in one sandbox, each in a fresh
// JavaScript context, up to maxRuns; a run that times out ends its sandbox; untrusted and limited
// are refused by name.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from '../../src/pool/index.js';
import { collectGarbage } from '../../src/supervisor/gc.js';
import { leftovers, testHost } from '../helpers/host.js';

const host = testHost('reuse');

function task(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pawl-reuse-task-'));
  writeFileSync(join(dir, 'main.js'), `function main(input) { ${body} }`);
  writeFileSync(join(dir, 'metadata.json'), JSON.stringify({ name: 'reuse-probe' }));
  return dir;
}

// What an earlier run in the same sandbox left in the JavaScript globals, and which process ran it.
const GLOBALS = task(`
  const before = { runs: globalThis.__runs ?? null, implicit: typeof leaked === 'undefined' ? null : leaked, env: process.env.LEFT ?? null,
    proto: Array.prototype.poisoned ?? null };
  globalThis.__runs = (globalThis.__runs ?? 0) + 1;
  leaked = input.i;
  process.env.LEFT = 'run ' + input.i;
  Array.prototype.poisoned = input.i;
  console.log('run', input.i);
  return { i: input.i, before, pid: process.pid, ppid: process.ppid, t: require('fs').readFileSync('/proc/self/stat', 'utf8').split(' ')[21] };
`);
// Spins past its wall time when asked to; otherwise answers with its process's start time.
const SLOW = task(`
  if (input.spin) for (;;) {}
  return { start: require('fs').readFileSync('/proc/self/stat', 'utf8').split(' ')[21] };
`);

afterAll(async () => {
  await collectGarbage(host);
  const left = await leftovers(host);
  expect(left.cgroups).toEqual([]);
  expect(left.scratch).toEqual([]);
}, 60_000);

describe('reuse mode', () => {
  it('runs several tasks in one sandbox, none seeing another run\'s globals, each with its own result and output', async () => {
    const pool = new Pool({ size: 0, maxConcurrent: 2, reuse: { maxRuns: 50 } }, host);
    try {
      const results = [];
      for (let i = 1; i <= 3; i++) results.push(await pool.run(GLOBALS, { input: { i }, trustLevel: 'trusted' }));
      for (const r of results) {
        expect(r.status, JSON.stringify(r.error)).toBe('succeeded');
        expect((r.output as { before: unknown }).before).toEqual({ runs: null, implicit: null, env: null, proto: null });
      }
      for (const r of results) {
        expect(r.stdout).toBe(`run ${(r.output as { i: number }).i}\n`);
        expect(r.usage.cpu_ms).toBeGreaterThanOrEqual(0);
        expect(r.usage.peak_memory_bytes).toBeGreaterThan(0);
      }
      // One sandbox: the same process (same start time) ran all three; ids tell the runs apart.
      expect(new Set(results.map((r) => (r.output as { t: string }).t)).size).toBe(1);
      expect(new Set(results.map((r) => r.id)).size).toBe(3);
      expect(pool.stats().started).toBe(1);
    } finally {
      await pool.close();
    }
  }, 120_000);

  it('starts a fresh sandbox after maxRuns runs', async () => {
    const pool = new Pool({ size: 0, maxConcurrent: 2, reuse: { maxRuns: 2 } }, host);
    try {
      const starts = [];
      for (let i = 0; i < 5; i++) {
        const r = await pool.run(SLOW, { input: {}, trustLevel: 'trusted' });
        expect(r.status, JSON.stringify(r.error)).toBe('succeeded');
        starts.push((r.output as { start: string }).start);
      }
      expect(starts[0]).toBe(starts[1]);
      expect(starts[2]).not.toBe(starts[1]);
      expect(starts[2]).toBe(starts[3]);
      expect(starts[4]).not.toBe(starts[3]);
      expect(pool.stats().started).toBe(3);
    } finally {
      await pool.close();
    }
  }, 120_000);

  it('a run that times out ends its sandbox; the next run gets a fresh, working one', async () => {
    const pool = new Pool({ size: 0, maxConcurrent: 2, reuse: { maxRuns: 50 } }, host);
    const opts = { trustLevel: 'trusted', policy: { resources: { wallTime: '1500ms' } } };
    try {
      const first = await pool.run(SLOW, { ...opts, input: {} });
      expect(first.status).toBe('succeeded');
      const stuck = await pool.run(SLOW, { ...opts, input: { spin: true } });
      expect(stuck.error).toMatchObject({ kind: 'Timeout', limit: 'wall' });
      const next = await pool.run(SLOW, { ...opts, input: {} });
      expect(next.status, JSON.stringify(next.error)).toBe('succeeded');
      expect((next.output as { start: string }).start).not.toBe((first.output as { start: string }).start);
      expect(pool.stats().started).toBe(2);
    } finally {
      await pool.close();
    }
  }, 120_000);

  it('holds each run to its own CPU time, not the sandbox\'s total', async () => {
    const BURN = task(`const end = process.cpuUsage().user + input.ms * 1000; while (process.cpuUsage().user < end) {} return { start: require('fs').readFileSync('/proc/self/stat', 'utf8').split(' ')[21] };`);
    const pool = new Pool({ size: 0, maxConcurrent: 2, reuse: { maxRuns: 50 } }, host);
    const opts = { trustLevel: 'trusted', policy: { resources: { cpuTime: '1s', wallTime: '20s' } } };
    try {
      const warm = await pool.run(BURN, { ...opts, input: { ms: 0 } }); // node's boot is not a run's
      // Three runs of 400 ms CPU each: 1.2 s in one sandbox, each under its 1 s.
      const runs = [];
      for (let i = 0; i < 3; i++) runs.push(await pool.run(BURN, { ...opts, input: { ms: 400 } }));
      expect(runs.map((r) => r.status), JSON.stringify(runs.map((r) => [r.error, r.usage.cpu_ms]))).toEqual(['succeeded', 'succeeded', 'succeeded']);
      for (const r of runs) expect((r.output as { start: string }).start).toBe((warm.output as { start: string }).start);
      for (const r of runs) expect(r.usage.cpu_ms).toBeLessThan(1000); // a delta, not the sandbox's total
      const over = await pool.run(BURN, { ...opts, input: { ms: 3000 } });
      expect(over.error).toMatchObject({ kind: 'Timeout', limit: 'cpu', limit_value: 1000 });
    } finally {
      await pool.close();
    }
  }, 120_000);

  it('what a run leaves running between runs is nobody\'s: its CPU is not the next run\'s, and its writes to fd 4 end the sandbox', async () => {
    // A worker thread outlives its run: it burns CPU, or writes lines to fd 4, after the reply.
    const LEAVE = task(`
      const { Worker } = require('worker_threads');
      if (input.burn) new Worker('const end = Date.now() + ' + input.burn + '; while (Date.now() < end) {}', { eval: true }).unref();
      if (input.write) new Worker('setTimeout(() => { const fs = require("fs"); for (let i = 0; i < 3; i++) fs.writeSync(4, "x".repeat(1 << 20) + String.fromCharCode(10)); }, 100)', { eval: true }).unref();
      return { start: require('fs').readFileSync('/proc/self/stat', 'utf8').split(' ')[21] };
    `);
    const pool = new Pool({ size: 0, maxConcurrent: 2, reuse: { maxRuns: 50 } }, host);
    const opts = { trustLevel: 'trusted', policy: { resources: { cpuTime: '1s', wallTime: '20s' } } };
    try {
      const first = await pool.run(LEAVE, { ...opts, input: { burn: 1500 } });
      expect(first.status, JSON.stringify(first.error)).toBe('succeeded');
      await new Promise((r) => setTimeout(r, 1700)); // its worker burned 1.5 s meanwhile
      const next = await pool.run(LEAVE, { ...opts, input: {} });
      expect(next.status, JSON.stringify([next.error, next.usage.cpu_ms])).toBe('succeeded');
      expect(next.usage.cpu_ms).toBeLessThan(500);
      expect((next.output as { start: string }).start).toBe((first.output as { start: string }).start); // the same sandbox
      // Lines written to fd 4 between runs: the sandbox ends; the next run gets a fresh one.
      await pool.run(LEAVE, { ...opts, input: { write: true } });
      // Not waiting for the sandbox to die: once it wrote out of turn it is given no run, even
      // while its processes are still being killed.
      await new Promise((r) => setTimeout(r, 400));
      const fresh = await pool.run(LEAVE, { ...opts, input: {} });
      expect(fresh.status).toBe('succeeded');
      expect((fresh.output as { start: string }).start).not.toBe((first.output as { start: string }).start);
    } finally {
      await pool.close();
    }
  }, 120_000);

  it('holds a run\'s writes to fd 4 to 16 MiB: past it the sandbox ends, as ResourceExhausted/output', async () => {
    const FLOOD = task(`const fs = require('fs'); for (let i = 0; i < 17; i++) fs.writeSync(4, 'x'.repeat(1 << 20)); return {};`);
    const pool = new Pool({ size: 0, maxConcurrent: 2, reuse: { maxRuns: 50 } }, host);
    try {
      const r = await pool.run(FLOOD, { trustLevel: 'trusted', input: {} });
      expect(r.error, JSON.stringify(r.error)).toMatchObject({ kind: 'ResourceExhausted', resource: 'output' });
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('counts a run\'s proxy refusals past the sandbox\'s first 100: a failing run after them is NetworkBlocked', async () => {
    const FETCHES = task(`
      return (async () => {
        for (let i = 0; i < input.n; i++) { try { await fetch('http://refused-' + i + '.example:' + input.port + '/'); } catch {} }
        if (input.rethrow) await fetch('http://refused-last.example:' + input.port + '/');
        return { done: true };
      })();
    `);
    const pool = new Pool({ size: 0, maxConcurrent: 2, reuse: { maxRuns: 50 } }, host);
    const opts = { trustLevel: 'trusted', policy: { network: { mode: 'restricted', allowedHosts: ['127.0.0.2:9'] }, resources: { wallTime: '60s' } } };
    try {
      expect((await pool.run(FETCHES, { ...opts, input: { n: 103, port: 80 } })).status).toBe('succeeded');
      const failing = await pool.run(FETCHES, { ...opts, input: { n: 0, port: 80, rethrow: true } });
      expect(failing.error?.kind, JSON.stringify(failing.error)).toBe('NetworkBlocked');
      expect(failing.violations).toContainEqual({ kind: 'network', detail: 'egress proxy denied 1 more request(s)', source: 'supervisor' });
    } finally {
      await pool.close();
    }
  }, 120_000);

  it('refuses the untrusted and limited trust levels, naming the level', async () => {
    const pool = new Pool({ size: 0, reuse: {} }, host);
    try {
      await expect(pool.run(SLOW, { trustLevel: 'untrusted' })).rejects.toThrow(/reuse mode is only for the trusted and system trust levels.*trust level is untrusted/);
      await expect(pool.run(SLOW, { trustLevel: 'limited' })).rejects.toThrow(/trust level is limited/);
      await expect(pool.run(SLOW)).rejects.toThrow(/trust level is limited/);
      expect(pool.stats().started).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('is off by default: a pool without reuse runs trusted tasks one per sandbox', async () => {
    const pool = new Pool({ size: 0, maxConcurrent: 2 }, host);
    try {
      const a = await pool.run(SLOW, { trustLevel: 'trusted' });
      const b = await pool.run(SLOW, { trustLevel: 'trusted' });
      expect((a.output as { start: string }).start).not.toBe((b.output as { start: string }).start);
    } finally {
      await pool.close();
    }
  }, 60_000);
});
