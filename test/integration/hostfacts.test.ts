// The host-facts cache is trusted only while what a fact depends on is unchanged: a changed
// rootfs tree or a changed cgroup layout is detected and recomputed, never served from the cache.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FactsCache } from '../../src/hostfacts/cache.js';
import { cachedCgroupLayout } from '../../src/cgroup/layout-cache.js';

const DIST = join(import.meta.dirname, '..', '..', 'dist');

/** ensureRootfs in a fresh process (as each CLI command is), against a private state dir. */
function ensureInNewProcess(stateDir: string): { path: string; built: boolean } {
  const script = `
    const { ensureRootfs } = await import(${JSON.stringify(join(DIST, 'rootfs', 'index.js'))});
    const { hostConfig } = await import(${JSON.stringify(join(DIST, 'config', 'host.js'))});
    const r = await ensureRootfs(hostConfig({ stateDir: ${JSON.stringify(stateDir)}, runDir: ${JSON.stringify(join(stateDir, 'runs'))} }));
    console.log(JSON.stringify(r));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
}

describe('host facts cache', () => {
  it('a rootfs changed after it was built is detected and rebuilt, not trusted', () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'pawl-facts-'));
    try {
      const first = ensureInNewProcess(stateDir);
      expect(first.built).toBe(true);
      expect(ensureInNewProcess(stateDir)).toMatchObject({ path: first.path, built: false }); // unchanged: trusted
      const harness = join(first.path, 'opt', 'pawl', readdirSync(join(first.path, 'opt', 'pawl')).find((f) => f.startsWith('harness'))!);
      const original = readFileSync(harness, 'utf8');
      appendFileSync(harness, '\nglobalThis.tampered = true;\n');
      const again = ensureInNewProcess(stateDir);
      expect(again).toMatchObject({ path: first.path, built: true });
      expect(readFileSync(harness, 'utf8')).toBe(original);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('a changed cgroup layout (mount table) is detected, while an unchanged one is served from the cache', async () => {
    const cache = new FactsCache(mkdtempSync(join(tmpdir(), 'pawl-facts-')));
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    const real = await cachedCgroupLayout(cache, mountinfo);
    expect(real.mounts.memory).toBeDefined();
    // Prove the cache is really consulted: a doctored value under the same key comes back.
    const file = join(cache.dir, 'cgroup-layout.json');
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...stored, value: { ...stored.value, mounts: { ...stored.value.mounts, memory: '/doctored' } } }));
    expect((await cachedCgroupLayout(cache, mountinfo)).mounts.memory).toBe('/doctored');
    // The memory hierarchy mounted elsewhere: a new layout, recomputed from the new table.
    const moved = mountinfo.replace(` ${real.mounts.memory} `, ` ${real.mounts.memory}-moved `);
    expect(moved).not.toBe(mountinfo);
    expect((await cachedCgroupLayout(cache, moved)).mounts.memory).toBe(`${real.mounts.memory}-moved`);
  });
});
