import { describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../src/config/resolve.js';

const MiB = 1024 ** 2;

describe('policy resolution', () => {
  it('has the Ratchet isolation plan defaults (limited)', () => {
    const p = resolvePolicy();
    expect(p.trustLevel).toBe('limited');
    expect(p.resources).toMatchObject({
      memory: 128 * MiB, cpuPercent: 50, cpuPeriodUs: 100_000, processes: 10, fileDescriptors: 64,
      wallTime: 300_000, cpuTime: 30_000, diskReadBps: 10 * MiB, diskWriteBps: 5 * MiB,
      diskSpace: 100 * MiB, tmpSize: 50 * MiB, stdoutMax: MiB, stderrMax: MiB,
    });
    expect(p.network.mode).toBe('none');
    expect(p.security).toMatchObject({ uid: 1000, gid: 1000 });
    expect(p.runtime).toBe('bwrap');
  });

  it.each([
    ['untrusted', 64, 25, 60_000, 5, 32],
    ['limited', 128, 50, 300_000, 10, 64],
    ['trusted', 512, 75, 600_000, 50, 256],
    ['system', 2048, 100, 3_600_000, 100, 1024],
  ])('trust level %s: %d MB, %d%% CPU, %d ms, %d processes, %d fds', (level, mb, cpu, wall, procs, fds) => {
    const p = resolvePolicy({ trustLevel: level });
    expect(p.resources).toMatchObject({ memory: mb * MiB, cpuPercent: cpu, wallTime: wall, processes: procs, fileDescriptors: fds });
  });

  it('lays task policy over the trust level, and run overrides over both', () => {
    const p = resolvePolicy({
      trustLevel: 'limited',
      task: { resources: { memory: '96MB', wallTime: '10s' } },
      overrides: { resources: { wallTime: '2s' } },
    });
    expect(p.resources).toMatchObject({ memory: 96 * MiB, wallTime: 2000, processes: 10, cpuPercent: 50 });
  });

  it("lets a task only tighten its trust level's limits", () => {
    const p = resolvePolicy({ trustLevel: 'untrusted', task: { resources: { memory: '2GB', wallTime: '1s', processes: 50 } } });
    expect(p.resources).toMatchObject({ memory: 64 * MiB, wallTime: 1000, processes: 5 });
    // the operator's overrides may loosen
    expect(resolvePolicy({ trustLevel: 'untrusted', overrides: { resources: { memory: '2GB' } } }).resources.memory).toBe(2048 * MiB);
  });

  // Ratchet's memory_limit "32MB" was refused: the level's /tmp (50MB) no longer fitted.
  it('a task that lowers its memory below its /tmp gets a /tmp that fits, unless it names one', () => {
    expect(resolvePolicy({ task: { resources: { memory: '32MB' } } }).resources).toMatchObject({ memory: 32 * MiB, tmpSize: 16 * MiB });
    expect(resolvePolicy({ task: { resources: { memory: '100MB' } } }).resources).toMatchObject({ memory: 100 * MiB, tmpSize: 50 * MiB });
    expect(resolvePolicy({ task: { resources: { memory: '32MB', tmpSize: '8MB' } } }).resources.tmpSize).toBe(8 * MiB);
    expect(() => resolvePolicy({ task: { resources: { memory: '32MB', tmpSize: '40MB' } } })).toThrow(/tmpSize: must be smaller than resources\.memory/);
  });

  it('clamps a task\'s own time past what a timer waits for, as any looser limit of its own', () => {
    expect(resolvePolicy({ task: { resources: { wallTime: '1000h' } } }).resources.wallTime).toBe(300_000);
    expect(resolvePolicy({ trustLevel: 'system', task: { resources: { wallTime: 90 * 24 * 3600_000 } } }).resources.wallTime).toBeLessThanOrEqual(2 ** 31 - 1);
  });

  it('refuses a "__proto__" key (a security.yaml env: {__proto__: x} was dropped without a word), and a size past 2^53', () => {
    expect(() => resolvePolicy({ task: JSON.parse('{"env": {"__proto__": "x"}}') })).toThrow(/a "__proto__" key is refused/);
    expect(() => resolvePolicy({ overrides: JSON.parse('{"resources": {"__proto__": {"memory": 1}}}') })).toThrow(/a "__proto__" key is refused/);
    expect(() => resolvePolicy({ overrides: { resources: { memory: '99999999TB' } } })).toThrow(/resources\.memory: invalid size "99999999TB": at most 9007199254740991 bytes/);
  });

  it.each([
    [{ security: { uid: 5 } }, /a task's own policy may set only resources and env; security is for the operator/],
    [{ trustLevel: 'system' }, /trustLevel is for the operator/],
    [{ network: { mode: 'full' } }, /network is for the operator/],
    [{ resources: { threadsPerProcess: 100 } }, /cannot set resources\.threadsPerProcess/],
    [{ resources: { memory: '12XB' } }, /invalid task's policy: resources\.memory: invalid size/],
    [{ resources: { diskReadBps: 0, diskWriteBps: 0 } }, /diskReadBps: must be at least 1MB per second/],
  ])('refuses a task policy that reaches past its place: %j', (task, message) => {
    expect(() => resolvePolicy({ task: task as never })).toThrow(message);
  });

  it.each([
    [{ resources: { memory: '12XB' } }, /resources\.memory: invalid size "12XB"/],
    [{ resources: { wallTime: '-1s' } }, /resources\.wallTime: .*must not be negative/],
    [{ resources: { tmpSize: '200MB' } }, /tmpSize: must be smaller than resources\.memory/],
    [{ resources: { memory: '8MB', tmpSize: '1MB' } }, /memory: must be at least 16MB/],
    [{ network: { mode: 'none', allowedHosts: ['example.com'] } }, /network\.allowedHosts: an allow list needs network\.mode "restricted"/],
    [{ network: { mode: 'wifi' } }, /network\.mode/],
    [{ resources: { memroy: '1GB' } }, /memroy/],
    [{ filesystem: { binds: [{ src: '/data', dst: '/usr/lib/x' }] } }, /cannot bind over \/usr\/lib\/x/],
    [{ filesystem: { binds: [{ src: 'relative', dst: '/data' }] } }, /absolute path/],
    [{ env: { 'BAD NAME': 'x' } }, /invalid variable name/],
    [{ resources: { diskReadBps: 0 } }, /diskReadBps: must be at least 1MB per second/],
    [{ resources: { diskWriteBps: '4KB' } }, /diskWriteBps: must be at least 1MB per second \(slower I\/O makes unkillable D-state sleeps\)/],
    [{ resources: { tmpSize: 0 } }, /tmpSize: must be at least 64KB/],
    [{ filesystem: { binds: [{ src: '/data', dst: '//usr' }] } }, /normalised absolute path/],
    [{ filesystem: { binds: [{ src: '/data', dst: '/./etc' }] } }, /normalised absolute path/],
    [{ filesystem: { binds: [{ src: '/data', dst: '/tmp/.' }] } }, /normalised absolute path/],
    [{ env: { A: 'x\u0000y' } }, /env\.A: must not hold a NUL/],
    [{ resources: { wallTime: '600h' } }, /resources\.wallTime: invalid duration "600h": at most 2147483647 ms/],
    [{ resources: { wallTime: 0 } }, /resources\.wallTime: must be at least 1ms/],
    [{ security: { apparmorProfile: 'p\nq' } }, /apparmorProfile: a loaded profile's name, without control characters/],
  ])('refuses %j with a precise message', (overrides, message) => {
    expect(() => resolvePolicy({ overrides: overrides as never })).toThrow(message);
  });

  it('refuses an unknown trust level by name', () => {
    expect(() => resolvePolicy({ trustLevel: 'root' })).toThrow(/unknown trust level "root": expected one of untrusted, limited, trusted, system/);
  });
});

describe('resolvePolicy remembers what it resolved', () => {
  it('gives each caller a copy of its own, answers a changed input afresh, and still refuses what is not exactly JSON', () => {
    const input = { trustLevel: 'limited', overrides: { resources: { memory: '96MB' } } };
    const first = resolvePolicy(input);
    first.resources.memory = 1; // a caller changing its own copy
    first.network.allowedHosts.push('changed.example');
    const again = resolvePolicy(input);
    expect(again.resources.memory).toBe(96 * 1024 * 1024);
    expect(again.network.allowedHosts).toEqual([]);
    expect(again).not.toBe(first);
    again.resources.memory = 2; // and one that came from what was remembered
    expect(resolvePolicy(input).resources.memory).toBe(96 * 1024 * 1024);
    expect(resolvePolicy({ trustLevel: 'limited', overrides: { resources: { memory: '80MB' } } }).resources.memory).toBe(80 * 1024 * 1024);
    // A key only JSON would drop is still an unknown key (JSON.stringify would make it the input above).
    expect(() => resolvePolicy({ trustLevel: 'limited', overrides: { resources: { memory: '96MB' }, typo: undefined } as never })).toThrow(/typo/);
    expect(() => resolvePolicy({ trustLevel: 'limited', overrides: { resources: { memory: Number.NaN } } as never })).toThrow(/memory/);
    // JSON writes a Map as {} and a Date as its string: neither is taken for what was remembered.
    resolvePolicy({ trustLevel: 'limited', overrides: { env: {} } });
    expect(() => resolvePolicy({ trustLevel: 'limited', overrides: { env: new Map() } as never })).toThrow(/env/);
  });
});
