// `pawl explain` prints the plan object the backend renders: for each backend, every part of the
// explained layout (mounts, masked /proc paths, env, cwd, user, hostname, argv) is in that
// backend's rendering, and the rendering holds nothing of those kinds the layout does not.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { resolvePolicy } from '../../src/config/resolve.js';
import { describeMount, explain } from '../../src/supervisor/explain.js';
import type { OciSpec } from '../../src/runtime/oci/config.js';
import { testHost } from '../helpers/host.js';

const host = testHost('explain');
const policyFor = (runtime: 'bwrap' | 'runc' | 'crun') => resolvePolicy({
  overrides: {
    runtime,
    env: { FOO: 'bar baz' },
    network: { mode: 'restricted', allowedHosts: ['a.com'] },
    filesystem: { binds: [{ src: '/usr/bin/busybox', dst: '/bin/busybox' }, { src: '/srv', dst: '/data', readOnly: false }] },
  },
});

/** The values following each occurrence of `flag` in an argv, `n` at a time. */
const after = (args: string[], flag: string, n: number) => args.flatMap((a, i) => (a === flag ? [args.slice(i + 1, i + 1 + n)] : []));

describe('explain shows what the backend renders', () => {
  it('bwrap: its argv holds exactly the explained layout', async () => {
    const e = await explain(policyFor('bwrap'), { host });
    const a = e.runtime.slice(1);
    const { layout } = e;
    expect(e.mounts.slice(1)).toEqual(layout.mounts.map((m) => describeMount(m, e.policy, host.stateDir)));
    const binds = [...after(a, '--ro-bind', 2), ...after(a, '--bind', 2), ...after(a, '--ro-bind-try', 2)].filter(([src]) => src !== '/dev/null');
    expect(binds.map(([, dst]) => dst).sort()).toEqual(layout.mounts.filter((m) => m.type === 'bind').map((m) => m.dst).sort());
    for (const m of layout.mounts) {
      if (m.type === 'bind') expect(binds).toContainEqual([m.src, m.dst]);
      if (m.type === 'proc') expect(after(a, '--proc', 1)).toEqual([[m.dst]]);
      if (m.type === 'dev') expect(after(a, '--dev', 1)).toEqual([[m.dst]]);
      if (m.type === 'tmpfs') expect(a.join(' ')).toContain(`--size ${m.size} --tmpfs ${m.dst}`);
    }
    const masked = [...after(a, '--ro-bind', 2).filter(([src]) => src === '/dev/null').map(([, dst]) => dst!), ...after(a, '--tmpfs', 1).map(([d]) => d!).filter((d) => d.startsWith('/proc/'))];
    expect(masked.sort()).toEqual(layout.proc.masked.filter((p) => existsSync(p)).sort());
    expect(Object.fromEntries(after(a, '--setenv', 2))).toEqual(layout.env);
    expect(after(a, '--chdir', 1)).toEqual([[layout.cwd]]);
    expect(after(a, '--uid', 1)).toEqual([[String(layout.user.uid)]]);
    expect(after(a, '--gid', 1)).toEqual([[String(layout.user.gid)]]);
    expect(after(a, '--hostname', 1)).toEqual([[layout.hostname]]);
    expect(a.slice(a.indexOf('--') + 1)).toEqual(layout.argv);
    // And what is spawned runs exactly this argv, behind the shim.
    expect(e.spawn.slice(-e.runtime.length)).toEqual(e.runtime);
  });

  it.each(['runc', 'crun'] as const)('%s: its config.json holds exactly the explained layout', async (runtime) => {
    const e = await explain(policyFor(runtime), { host });
    const c = e.ociConfig as OciSpec;
    const { layout } = e;
    expect(e.mounts.slice(1)).toEqual(layout.mounts.map((m) => describeMount(m, e.policy, host.stateDir)));
    expect(c.mounts.map((m) => m.destination)).toEqual(layout.mounts.map((m) => m.dst));
    for (const [i, m] of layout.mounts.entries()) {
      const o = c.mounts[i]!;
      if (m.type === 'bind') expect(o).toMatchObject({ type: 'bind', source: m.src, options: expect.arrayContaining([m.readOnly ? 'ro' : 'rw']) });
      if (m.type === 'proc') expect(o.type).toBe('proc');
      if (m.type === 'dev' || m.type === 'tmpfs') expect(o.type).toBe('tmpfs');
      if (m.type === 'tmpfs') expect(o.options).toContain(`size=${m.size}`);
    }
    expect(c.linux.maskedPaths).toEqual(layout.proc.masked);
    expect(c.linux.readonlyPaths).toEqual(layout.proc.readOnly);
    expect(c.process.env).toEqual(Object.entries(layout.env).map(([k, v]) => `${k}=${v}`));
    expect(c.process.cwd).toBe(layout.cwd);
    expect(c.process.user).toMatchObject(layout.user);
    expect(c.hostname).toBe(layout.hostname);
    expect(c.process.args).toEqual(layout.argv);
  });

  it('every backend gets the same layout from the same policy', async () => {
    const [b, r, c] = await Promise.all((['bwrap', 'runc', 'crun'] as const).map((rt) => explain(policyFor(rt), { host })));
    expect(r!.layout).toEqual(b!.layout);
    expect(c!.layout).toEqual(b!.layout);
  });
});
