// The host-facts cache is trusted only while what a fact depends on is unchanged: a changed
// rootfs tree or a changed cgroup layout is detected and recomputed, never served from the cache.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FactsCache } from '../../src/hostfacts/cache.js';
import { assertTrustedStateDir } from '../../src/hostfacts/trusted-dir.js';
import { execProgram } from '../../src/index.js';
import { hostConfig } from '../../src/config/host.js';
import { chownSync, lchownSync } from 'node:fs';
import { cachedCgroupLayout } from '../../src/cgroup/layout-cache.js';

const DIST = join(import.meta.dirname, '..', '..', 'dist');

/** ensureRootfs in a fresh process (as each CLI command is), against a private state dir. */
function ensureInNewProcess(stateDir: string, umask = 0o022): { path: string; built: boolean } {
  const script = `
    process.umask(${umask});
    const { ensureRootfs } = await import(${JSON.stringify(join(DIST, 'rootfs', 'index.js'))});
    const { hostConfig } = await import(${JSON.stringify(join(DIST, 'config', 'host.js'))});
    const r = await ensureRootfs(hostConfig({ stateDir: ${JSON.stringify(stateDir)}, runDir: ${JSON.stringify(join(stateDir, 'runs'))} }));
    console.log(JSON.stringify(r));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** A state dir as pawl makes one (0755): the sandboxes' users pass through it to the rootfs. */
function stateDirOfTest(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pawl-facts-'));
  chmodSync(dir, 0o755);
  return dir;
}

describe('host facts cache', () => {
  it('a rootfs changed after it was built is detected and rebuilt, not trusted', () => {
    const stateDir = stateDirOfTest();
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
      // A file added (every sandbox's node would preload it), or a file's mode changed: rebuilt too.
      writeFileSync(join(first.path, 'etc', 'ld.so.preload'), '/usr/lib/evil.so\n');
      expect(ensureInNewProcess(stateDir)).toMatchObject({ path: first.path, built: true });
      expect(existsSync(join(first.path, 'etc', 'ld.so.preload'))).toBe(false);
      mkdirSync(join(first.path, 'usr', 'new-dir'));
      expect(ensureInNewProcess(stateDir)).toMatchObject({ path: first.path, built: true });
      chmodSync(harness, 0o4755);
      expect(ensureInNewProcess(stateDir)).toMatchObject({ path: first.path, built: true });
      expect(statSync(harness).mode & 0o7777).not.toBe(0o4755);
      expect(ensureInNewProcess(stateDir)).toMatchObject({ path: first.path, built: false });
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  }, 120_000);

  // Every build of pawl's harness adds an index entry, and every new process reads the whole index.
  it('a build keeps the index to its newest entries with a tree, and removes replaced trees a day on', () => {
    const stateDir = stateDirOfTest();
    try {
      const first = ensureInNewProcess(stateDir);
      const root = join(stateDir, 'rootfs');
      const hash = first.path.slice(root.length + 1);
      const tree = (name: string) => {
        mkdirSync(join(root, name));
        writeFileSync(join(root, name, '.pawl-rootfs'), '');
      };
      const [recent, early] = ['aaaaaaaaaaaaaaa1', 'aaaaaaaaaaaaaaa2'];
      for (const t of [recent, early]) tree(t);
      const real = JSON.parse(readFileSync(join(root, 'index.json'), 'utf8')) as Record<string, string>;
      const fake: Record<string, string> = { ...real, 'fake-0': early };
      for (let i = 1; i < 39; i++) fake[`fake-${i}`] = `ffffffffffffff${String(i).padStart(2, '0')}`; // trees long gone
      fake['fake-39'] = recent;
      writeFileSync(join(root, 'index.json'), JSON.stringify(fake));
      const day = 24 * 3600_000;
      mkdirSync(join(root, `.old-${Date.now() - 2 * day}-expired`));
      mkdirSync(join(root, `.old-${Date.now() - 60_000}-fresh`));
      // A build: the tree is tampered with, so it is rebuilt.
      const harness = join(first.path, 'opt', 'pawl', readdirSync(join(first.path, 'opt', 'pawl')).find((f) => f.startsWith('harness'))!);
      appendFileSync(harness, '\n// tampered\n');
      expect(ensureInNewProcess(stateDir)).toMatchObject({ path: first.path, built: true });
      const index = JSON.parse(readFileSync(join(root, 'index.json'), 'utf8')) as Record<string, string>;
      expect(Object.entries(index)).toEqual([['fake-39', recent], ...Object.entries(real).map(([k]) => [k, hash])]);
      // Past the 32 newest: early's entry; the entries whose trees are gone. Trees stay (other
      // processes, other versions may run from them); a replaced one goes a day after its rename.
      const names = readdirSync(root);
      expect(names).toEqual(expect.arrayContaining([recent, early, hash]));
      expect(names.filter((n) => n.startsWith('.old-')).length).toBe(2); // the tampered tree, the fresh one
      expect(names.some((n) => n.endsWith('-fresh'))).toBe(true);
      expect(names.some((n) => n.endsWith('-expired'))).toBe(false);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  }, 120_000);

  // mkdir -p makes every missing dir with the mode asked for: the private cache dir, made first,
  // once made the state dir 0700, and every run of a fresh host failed at bwrap's EACCES.
  it('a fresh state dir is made passable for the sandboxes\' users (its cache dir private), and one they cannot pass is refused, named', () => {
    const parent = stateDirOfTest();
    const stateDir = join(parent, 'state');
    try {
      ensureInNewProcess(stateDir, 0o077); // a hardened root's umask
      expect(statSync(stateDir).mode & 0o777).toBe(0o755);
      expect(statSync(join(stateDir, 'rootfs')).mode & 0o777).toBe(0o755);
      expect(statSync(join(stateDir, 'cache')).mode & 0o777).toBe(0o700);
      chmodSync(stateDir, 0o700);
      expect(() => ensureInNewProcess(stateDir)).toThrow(`${stateDir} has mode 0700, and their users pass through it as others (chmod o+x ${stateDir})`);
      // Reached through a link: the dirs above its target count, not the link's own.
      symlinkSync(stateDir, join(parent, 'linked'));
      expect(() => ensureInNewProcess(join(parent, 'linked'))).toThrow(`${stateDir} has mode 0700`);
      // A relative state dir (PAWL_STATE_DIR=state) names another dir from every working dir.
      expect(() => hostConfig({ stateDir: 'state', runDir: 'state/runs' })).toThrow(/stateDir: must be an absolute path/);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  }, 120_000);

  // A state dir (or a dir on the way to it) that another user could write let that user plant a
  // compiled seccomp filter that allowed every call, and the next root run used it.
  it('a state dir another user could change is refused before a run, naming the path', async () => {
    const parent = stateDirOfTest();
    const stateDir = join(parent, 'state');
    mkdirSync(join(stateDir, 'cache'), { recursive: true, mode: 0o700 });
    chmodSync(stateDir, 0o755);
    try {
      expect(() => assertTrustedStateDir(stateDir, join(stateDir, 'runs'))).not.toThrow();
      chmodSync(stateDir, 0o777);
      expect(() => assertTrustedStateDir(stateDir, join(stateDir, 'runs-a'))).toThrow(`${stateDir} writable by others (mode 777)`);
      chmodSync(stateDir, 0o755);
      chownSync(join(stateDir, 'cache'), 65534, 65534);
      expect(() => assertTrustedStateDir(stateDir, join(stateDir, 'runs-b'))).toThrow(`has ${join(stateDir, 'cache')} owned by uid 65534`);
      chownSync(join(stateDir, 'cache'), 0, 0);
      // A link of another user's on the way (in a sticky dir, as /tmp): they could point it anywhere.
      const sticky = join(parent, 'sticky');
      mkdirSync(sticky);
      chmodSync(sticky, 0o1777);
      symlinkSync(stateDir, join(sticky, 'state'));
      expect(() => assertTrustedStateDir(join(sticky, 'state'), join(stateDir, 'runs-c'))).not.toThrow();
      lchownSync(join(sticky, 'state'), 65534, 65534);
      expect(() => assertTrustedStateDir(join(sticky, 'state'), join(stateDir, 'runs-d'))).toThrow(`has ${join(sticky, 'state')} owned by uid 65534`);
      // A link on the way to a sticky dir (a home's tmp -> /tmp) is a step like any other, but the
      // state dir itself may not be one others can add to.
      const viaSticky = join(parent, 'via-sticky');
      symlinkSync(sticky, viaSticky);
      mkdirSync(join(sticky, 'mine'), { mode: 0o755 });
      expect(() => assertTrustedStateDir(join(viaSticky, 'mine'), join(stateDir, 'runs-f'))).not.toThrow();
      expect(() => assertTrustedStateDir(viaSticky, join(stateDir, 'runs-g'))).toThrow(/is writable by others/);
      // A relative link that climbs (Fedora's /var/run -> ../run) is walked as the kernel does.
      mkdirSync(join(parent, 'a'));
      symlinkSync('../state', join(parent, 'a', 'up'));
      expect(() => assertTrustedStateDir(join(parent, 'a', 'up'), join(stateDir, 'runs-h'))).not.toThrow();
      // And a run says so rather than using what is there.
      chmodSync(stateDir, 0o775);
      const host = hostConfig({ stateDir, runDir: join(stateDir, 'runs-e'), cgroupParent: 'pawl-facts' });
      await expect(execProgram(['/usr/bin/node', '-e', '0'], { host })).rejects.toMatchObject({ kind: 'HostUnsupported', message: expect.stringContaining('the state dir is not pawl\'s alone') });
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it('a cache file this user did not write, or a link, is not read', () => {
    const cache = new FactsCache(mkdtempSync(join(tmpdir(), 'pawl-facts-')));
    cache.set('fact', 'k', { v: 1 });
    expect(cache.get('fact', 'k')).toEqual({ v: 1 });
    const file = join(cache.dir, 'fact.json');
    chownSync(file, 65534, 65534);
    expect(cache.get('fact', 'k')).toBeUndefined();
    rmSync(file);
    writeFileSync(join(cache.dir, 'elsewhere.json'), JSON.stringify({ key: 'k', value: { v: 2 } }));
    symlinkSync(join(cache.dir, 'elsewhere.json'), file);
    expect(cache.get('fact', 'k')).toBeUndefined();
  });

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

  it('a mount that is not a cgroup (a run\'s /workspace) leaves the cached layout in use, unwritten', async () => {
    const cache = new FactsCache(mkdtempSync(join(tmpdir(), 'pawl-facts-')));
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    await cachedCgroupLayout(cache, mountinfo);
    const file = join(cache.dir, 'cgroup-layout.json');
    const before = statSync(file, { bigint: true });
    const withRun = `${mountinfo.trimEnd()}\n999 29 7:0 / /var/lib/pawl/runs/x/workspace rw,nosuid,nodev - ext4 /dev/loop0 rw\n`;
    await cachedCgroupLayout(cache, withRun);
    const after = statSync(file, { bigint: true });
    expect(after.ino).toBe(before.ino); // not replaced (the cache writes a new file and renames it)
    expect(after.mtimeNs).toBe(before.mtimeNs);
  });
});
