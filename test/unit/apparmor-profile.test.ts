// Generated AppArmor profiles: every one the policy can produce is accepted by apparmor_parser
// (parse and compile only, -Q: this kernel has no AppArmor), and its rules follow the policy.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../src/config/resolve.js';
import type { Policy, PolicyInput } from '../../src/config/policy.js';
import { apparmorProfile, BLOCKED_DIRS } from '../../src/lsm/apparmor/index.js';

const PARSER = '/usr/sbin/apparmor_parser';
// Debian 12's kernel feature set (package apparmor). Compiled against it, a rule this kernel
// would not enforce is reported ("... not enforced"): the host itself offers no feature set.
const FEATURES = '/usr/share/apparmor-features/features';
const LEVELS = ['untrusted', 'limited', 'trusted', 'system'] as const;
const MODES = ['none', 'restricted', 'full'] as const;

const dir = mkdtempSync(join(tmpdir(), 'pawl-apparmor-'));
let n = 0;

/** apparmor_parser on the profile: -Q (never load), -K (no cache), compiled to a temp file. */
function parse(text: string, extra: string[] = []): { status: number | null; stderr: string } {
  const file = join(dir, `profile-${++n}`);
  writeFileSync(file, text);
  const r = spawnSync(PARSER, ['-Q', '-K', ...extra, '-o', `${file}.bin`, file], { encoding: 'utf8' });
  if (r.error) throw new Error(`${PARSER} cannot run (${r.error.message}): scripts/setup installs it (package apparmor)`);
  return { status: r.status, stderr: r.stderr };
}

/** Exit 0, and against a real kernel's features every rule is enforced (some are only downgraded). */
function expectAccepted(text: string): void {
  const plain = parse(text);
  expect(plain.stderr.replace(/^Cache read\/write disabled.*\n/gm, ''), 'apparmor_parser -Q -K').toBe('');
  expect(plain.status).toBe(0);
  const full = parse(text, ['--warn', 'all', '-M', FEATURES]);
  expect(full.status, full.stderr).toBe(0);
  expect(full.stderr.split('\n').filter((l) => /not enforced|error/i.test(l))).toEqual([]);
}

const policy = (trustLevel: string, overrides: PolicyInput = {}): Policy => resolvePolicy({ trustLevel, overrides });

/** Every field of the policy set away from its default. */
const everything = (): Policy =>
  policy('trusted', {
    runtime: 'runc',
    resources: { memory: '256MB', cpuPercent: 80, cpuPeriodUs: 50_000, processes: 20, threadsPerProcess: 16, fileDescriptors: 128, wallTime: '20s', cpuTime: '10s', diskReadBps: '2MB', diskWriteBps: '2MB', diskSpace: '20MB', diskInodes: 1000, tmpSize: '8MB', stdoutMax: '64KB', stderrMax: '64KB' },
    filesystem: {
      binds: [
        { src: '/srv/in', dst: '/data/in', readOnly: true },
        { src: '/srv/out', dst: '/data/out', readOnly: false },
        { src: '/srv/odd', dst: '/data/we ird*{x,y}[a]?^@{HOME}#"q', readOnly: true },
        { src: '/srv/home', dst: '/home/user/data', readOnly: true },
      ],
      // A bind into a blocked path is refused: the operator unblocks /home to bind into it.
      blockedPaths: ['/proc', '/sys', '/dev', '/etc/passwd', '/etc/shadow', '/root'],
    },
    network: { mode: 'restricted', allowedHosts: ['example.com', '*.example.org:8443'], allowedPorts: [443], blockedHosts: ['10.0.0.1'], dnsServers: ['9.9.9.9'], bandwidth: { down: '1MB', up: '512KB' }, maxConnections: 3, overLimit: 'refuse' },
    security: { uid: 2000, gid: 2000, seccomp: { profile: 'none' }, apparmorProfile: 'some-profile' },
    env: { A: 'b' },
    allowDegraded: ['swap-limit'],
    storage: { requireIoDevice: true, requireWorkspaceFs: true },
  });

describe('apparmor_parser accepts every generated profile', () => {
  for (const level of LEVELS) {
    for (const mode of MODES) {
      it(`${level}, network ${mode}`, () => {
        expectAccepted(apparmorProfile(policy(level, { network: { mode, forceFull: mode === 'full' } })).text);
      });
    }
  }

  it('a policy with every option set', () => {
    expectAccepted(apparmorProfile(everything()).text);
  });

  it('the parser is not a rubber stamp: a broken rule fails', () => {
    const text = apparmorProfile(policy('limited')).text.replace('  network unix,', '  network unix');
    expect(parse(text).status).not.toBe(0);
  });
});

const lines = (p: Policy) => apparmorProfile(p).text.split('\n').map((l) => l.trim());

describe('the rules follow the policy', () => {
  it('network full allows inet and inet6 stream and dgram; none and restricted allow no inet socket', () => {
    const full = lines(policy('limited', { network: { mode: 'full' } }));
    for (const r of ['network inet stream,', 'network inet dgram,', 'network inet6 stream,', 'network inet6 dgram,', 'network unix,']) expect(full).toContain(r);
    for (const mode of ['none', 'restricted'] as const) {
      const l = lines(policy('limited', { network: { mode } }));
      expect(l.filter((r) => /^network inet/.test(r))).toEqual([]);
      expect(l).toContain('deny network inet,');
      expect(l).toContain('deny network inet6,');
      expect(l).toContain('network unix,');
    }
  });

  it('only restricted reaches the egress socket', () => {
    expect(lines(policy('limited', { network: { mode: 'restricted' } }))).toContain('"/run/pawl/egress.sock" rw,');
    for (const mode of ['none', 'full'] as const) expect(apparmorProfile(policy('limited', { network: { mode } })).text).not.toContain('egress.sock');
  });

  it('binds become file rules: read-only ones readable (and runnable at trusted), writable ones writable and never code', () => {
    const binds = { binds: [{ src: '/srv/a', dst: '/data/a', readOnly: true }, { src: '/srv/b', dst: '/data/b', readOnly: false }] };
    const limited = lines(policy('limited', { filesystem: binds }));
    expect(limited).toEqual(expect.arrayContaining(['"/data/a" r,', '"/data/a/" r,', '"/data/a/**" r,', '"/data/b/" rw,', '"/data/b/**" rwlk,']));
    expect(lines(policy('trusted', { filesystem: binds }))).toContain('"/data/a/**" mrix,');
    expect(lines(policy('limited')).filter((l) => l.includes('/data/'))).toEqual([]);
  });

  it('glob and variable characters in a bind name only that path', () => {
    const l = lines(policy('limited', { filesystem: { binds: [{ src: '/srv', dst: '/data/*', readOnly: false }, { src: '/srv', dst: '/x/@{HOME}', readOnly: true }] } }));
    expect(l).toContain('"/data/\\*/**" rwlk,');
    expect(l).toContain('"/x/\\@\\{HOME\\}" r,');
    expect(l.some((r) => r.startsWith('"/data/*'))).toBe(false);
  });

  it('a control character or a backslash in a bind is refused, not written into the profile', () => {
    for (const dst of ['/data/a\nb', '/data/a\\']) {
      expect(() => apparmorProfile(policy('limited', { filesystem: { binds: [{ src: '/srv', dst, readOnly: true }] } }))).toThrow(/control character or a backslash/);
    }
  });

  it('blocked paths are denied, except a blocked tree the operator binds into', () => {
    const l = lines(policy('limited'));
    for (const d of BLOCKED_DIRS) expect(l).toContain(`deny ${d}/{,**} rwklx,`);
    expect(l).toEqual(expect.arrayContaining(['deny /etc/{shadow,gshadow} rwklx,', 'deny /sys/** wklx,']));
    expect(l.some((r) => r.startsWith('deny /proc/{kcore,') && r.includes('sysrq-trigger'))).toBe(true);
    const bound = lines(policy('limited', { filesystem: { binds: [{ src: '/srv', dst: '/home/u', readOnly: true }], blockedPaths: ['/root'] } }));
    expect(bound).not.toContain('deny /home/{,**} rwklx,');
    expect(bound).toContain('deny /root/{,**} rwklx,');
  });

  it('no capabilities, mounts or ptrace; signals only within the profile itself', () => {
    const p = apparmorProfile(policy('limited'));
    const l = p.text.split('\n').map((r) => r.trim());
    expect(l).toEqual(expect.arrayContaining(['deny capability,', 'deny mount,', 'deny umount,', 'deny pivot_root,', 'deny ptrace,', `signal (send, receive) peer=${p.name},`]));
    expect(l.filter((r) => /^(capability|mount|ptrace|change_profile)\b/.test(r))).toEqual([]);
  });

  it('untrusted logs every denial (audit deny)', () => {
    const l = lines(policy('untrusted'));
    expect(l).toContain('audit deny capability,');
    expect(l.filter((r) => /^deny /.test(r))).toEqual([]);
  });

  it('is named by the hash of its rules: limits that do not change a rule keep the name', () => {
    const a = apparmorProfile(policy('limited'));
    expect(a.name).toMatch(/^pawl-[0-9a-f]{16}$/);
    expect(a.text).toContain(`profile ${a.name} `);
    expect(apparmorProfile(policy('limited', { resources: { memory: '300MB' } })).name).toBe(a.name);
    const names = new Set([...LEVELS.flatMap((lv) => MODES.map((mode) => apparmorProfile(policy(lv, { network: { mode, forceFull: true } })).name))]);
    // The header names the level, so each level and mode has its own profile.
    expect(names.size).toBe(LEVELS.length * MODES.length);
  });
});
