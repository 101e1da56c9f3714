// Host patterns, the name and address checks of the egress proxy, and the network policy schema.
import { describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../src/config/resolve.js';
import { canonicalIp, checkAddress, checkName, compileRules, parseHostPattern, specialRange } from '../../src/network/index.js';
import { ownAddresses } from '../../src/network/hosts.js';
import { networkFromFlags } from '../../src/cli/network-args.js';
import { bwrapArgs } from '../../src/runtime/bwrap/argv.js';
import { ociConfig } from '../../src/runtime/oci/config.js';
import { testPlan } from '../helpers/plan.js';
import { EGRESS_SOCKET } from '../../src/rootfs/layout.js';
import { classify, type RunFacts } from '../../src/supervisor/classify.js';

const rules = (allowedHosts: string[], extra: Record<string, unknown> = {}) =>
  compileRules(resolvePolicy({ overrides: { network: { mode: 'restricted', allowedHosts, ...extra } } }).network);

describe('host patterns', () => {
  it.each([
    ['api.example.com', { host: 'api.example.com', wildcard: false, ip: false, port: null }],
    ['API.Example.COM.:8443', { host: 'api.example.com', wildcard: false, ip: false, port: 8443 }],
    ['*.example.com', { host: 'example.com', wildcard: true, ip: false, port: null }],
    ['10.1.2.3:80', { host: '10.1.2.3', wildcard: false, ip: true, port: 80 }],
    ['[2001:DB8::1]:443', { host: '2001:db8:0:0:0:0:0:1', wildcard: false, ip: true, port: 443 }],
    ['::1', { host: '0:0:0:0:0:0:0:1', wildcard: false, ip: true, port: null }],
  ])('parses %s', (text, want) => {
    expect(parseHostPattern(text)).toEqual(want);
  });

  it.each(['a*b.com', '*', 'exa mple.com', 'host:0', 'host:70000', '-bad.com', 'x..y', '2001:db8::1:443:'])('refuses %s', (text) => {
    expect(() => parseHostPattern(text)).toThrow();
  });
});

describe('name checks', () => {
  const r = rules(['api.example.com', '*.cdn.example.com', 'svc.example.com:8443', '127.0.0.2:9000', '*.internal']);
  it.each([
    ['api.example.com', 443, true],
    ['API.EXAMPLE.COM.', 80, true],
    ['api.example.com', 8080, false], // not an allowed port
    ['x.cdn.example.com', 443, true],
    ['a.b.cdn.example.com', 443, true],
    ['cdn.example.com', 443, false], // a wildcard does not match the bare name
    ['evilcdn.example.com', 443, false],
    ['api.example.com.evil.net', 443, false],
    ['svc.example.com', 8443, true],
    ['svc.example.com', 443, false], // an entry's own port replaces the allowed ports
    ['127.0.0.2', 9000, true], // named exactly: loopback allowed
    ['127.0.0.2', 9001, false],
    ['127.0.0.1', 9000, false],
    ['metadata.google.internal', 80, false], // blocked; a wildcard allow does not lift a block
    ['other.internal', 80, true],
    ['localhost', 80, false],
  ])('%s:%i -> %s', (host, port, ok) => {
    expect(checkName(r, host, port).ok).toBe(ok);
  });

  it('refuses a target that is no DNS name: what is checked is what gets resolved', () => {
    const w = rules(['*.example.com']);
    for (const host of ['attacker.com\0.example.com', 'ev\\105l.example.com', 'a b.example.com', 'x.example.com\n', `${'a'.repeat(64)}.example.com`, '.example.com']) {
      expect(checkName(w, host, 443), host).toEqual({ ok: false, reason: `${JSON.stringify(host)} is not a host name` });
    }
    expect(checkName(w, 'A_b-1.Example.COM.', 443).ok).toBe(true);
  });

  it('says why', () => {
    expect(checkName(r, 'metadata.google.internal', 80)).toEqual({ ok: false, reason: 'metadata.google.internal is a blocked host' });
    expect(checkName(r, 'nope.com', 443)).toEqual({ ok: false, reason: 'nope.com is not an allowed host' });
    expect(checkName(r, 'api.example.com', 22)).toEqual({ ok: false, reason: 'port 22 is not allowed for api.example.com' });
  });

  it('an exact allow entry lifts a default block (the operator named it); only for that port', () => {
    const lifted = rules(['127.0.0.1:8080', 'localhost:8080']);
    expect(checkName(lifted, '127.0.0.1', 8080).ok).toBe(true);
    expect(checkName(lifted, 'localhost', 8080).ok).toBe(true);
    expect(checkName(lifted, '127.0.0.1', 8081).ok).toBe(false);
  });

  it('an IP literal target is judged as an address too', () => {
    expect(checkName(rules(['10.0.0.0']), '10.0.0.0', 80)).toEqual({ ok: true }); // named: allowed
    expect(checkName(rules(['*.example.com']), '10.0.0.1', 80).ok).toBe(false);
  });
});

describe('address checks', () => {
  const r = rules(['api.example.com', '127.0.0.2:9000']);
  it.each([
    ['93.184.216.34', null],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['169.254.169.254', 'link-local (cloud metadata)'],
    ['10.1.2.3', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', null],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private (shared address space)'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'link-local (cloud metadata)'],
    ['64:ff9b::a9fe:a9fe', 'link-local (cloud metadata)'], // NAT64 of 169.254.169.254
    ['2002:7f00:1::1', 'loopback'], // 6to4 of 127.0.0.1
    ['fe80::1', 'link-local'],
    ['fd00::1', 'private (unique local)'],
    ['ff02::1', 'multicast'],
    ['2606:4700::1111', null],
    ['fe80::1%eth0', 'not an IP address'],
    ['example.com', 'not an IP address'],
  ])('%s is %s', (addr, want) => {
    expect(specialRange(addr)).toBe(want);
  });

  it('refuses blocked and special addresses unless the very address (and port) is named', () => {
    expect(checkAddress(r, '93.184.216.34', 443)).toEqual({ ok: true });
    expect(checkAddress(r, '127.0.0.1', 443)).toEqual({ ok: false, reason: '127.0.0.1 is a blocked address' });
    expect(checkAddress(r, '169.254.169.254', 80)).toEqual({ ok: false, reason: '169.254.169.254 is a blocked address' });
    expect(checkAddress(r, '10.0.0.5', 443)).toEqual({ ok: false, reason: '10.0.0.5 is a private address' });
    expect(checkAddress(r, '127.0.0.2', 9000)).toEqual({ ok: true });
    expect(checkAddress(r, '::ffff:127.0.0.2', 9000)).toEqual({ ok: true }); // same address, other spelling
    expect(checkAddress(r, '127.0.0.2', 80).ok).toBe(false);
    expect(checkAddress(r, '::ffff:169.254.169.254', 80).ok).toBe(false);
  });

  it("refuses this host's own addresses, public ones too, unless the very address is named", () => {
    const own = { ...rules(['*.example.com', '93.184.216.7:8080']), own: new Set(['93.184.216.7', '2606:4700::7'].map((a) => canonicalIp(a)!)) };
    expect(checkAddress(own, '93.184.216.7', 443)).toEqual({ ok: false, reason: '93.184.216.7 is an address of this host' });
    expect(checkAddress(own, '::ffff:93.184.216.7', 443).ok).toBe(false);
    expect(checkAddress(own, '2606:4700::7', 443)).toEqual({ ok: false, reason: `${canonicalIp('2606:4700::7')} is an address of this host` });
    expect(checkAddress(own, '93.184.216.7', 8080)).toEqual({ ok: true });
    expect(checkAddress(own, '93.184.216.8', 443)).toEqual({ ok: true });
    expect(checkName(own, '93.184.216.7', 443).ok).toBe(false);
    // Its IPv4 address carried in IPv6 (NAT64, 6to4) is the same host.
    expect(checkAddress(own, '64:ff9b::5db8:d807', 443).ok).toBe(false);
    expect(checkAddress(own, '2002:5db8:d807::1', 443).ok).toBe(false);
    // What the proxy takes as its own: every interface's address, canonical (loopback included).
    expect(ownAddresses()).toContain('127.0.0.1');
  });

  it('compares addresses in one spelling', () => {
    expect(canonicalIp('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(canonicalIp('2001:DB8::1')).toBe('2001:db8:0:0:0:0:0:1');
    expect(canonicalIp('not-an-ip')).toBeNull();
  });
});

describe('network policy', () => {
  it('has the Ratchet defaults', () => {
    expect(resolvePolicy().network).toEqual({
      mode: 'none', allowedHosts: [], allowedPorts: [80, 443],
      blockedHosts: ['169.254.169.254', 'metadata.google.internal', 'localhost', '127.0.0.1', '::1'],
      dnsServers: [], bandwidth: { down: 5 * 1024 * 1024, up: 1024 * 1024 }, maxConnections: 10, overLimit: 'wait', forceFull: false,
    });
  });

  it.each([
    [{ mode: 'none', allowedHosts: ['a.com'] }, /allowedHosts: an allow list needs network\.mode "restricted"/],
    [{ mode: 'restricted', allowedHosts: ['a*.com'] }, /allowedHosts\.0: "a\*\.com" is not a host name/],
    [{ mode: 'restricted', dnsServers: ['dns.google'] }, /dnsServers\.0: must be an IP address/],
    [{ mode: 'restricted', bandwidth: { down: 0 } }, /bandwidth\.down: must be at least 1KB per second/],
    [{ mode: 'restricted', maxConnections: 0 }, /maxConnections/],
  ])('refuses %j', (network, message) => {
    expect(() => resolvePolicy({ overrides: { network } as never })).toThrow(message);
  });

  it('refuses the host network at untrusted unless forced', () => {
    expect(() => resolvePolicy({ trustLevel: 'untrusted', overrides: { network: { mode: 'full' } } })).toThrow(/refused at trust level untrusted unless the operator forces it/);
    expect(resolvePolicy({ trustLevel: 'untrusted', overrides: { network: { mode: 'full', forceFull: true } } }).network.mode).toBe('full');
    expect(resolvePolicy({ trustLevel: 'limited', overrides: { network: { mode: 'full' } } }).network.mode).toBe('full');
  });

  it('comes from the CLI flags', () => {
    const n = networkFromFlags({
      network: 'restricted', 'allow-host': ['a.com', '*.b.com:8443'], 'allow-port': ['8080'], 'block-host': ['bad.a.com'],
      dns: ['127.0.0.1:5353'], 'net-down': '1MB/s', 'net-up': '64KB', 'net-connections': '3', 'net-over-limit': 'refuse',
    });
    const p = resolvePolicy({ overrides: { network: n } }).network;
    expect(p).toMatchObject({
      mode: 'restricted', allowedHosts: ['a.com', '*.b.com:8443'], allowedPorts: [8080], dnsServers: ['127.0.0.1:5353'],
      bandwidth: { down: 1024 * 1024, up: 64 * 1024 }, maxConnections: 3, overLimit: 'refuse',
    });
    expect(p.blockedHosts).toEqual(['169.254.169.254', 'metadata.google.internal', 'localhost', '127.0.0.1', '::1', 'bad.a.com']);
    expect(() => networkFromFlags({ 'net-connections': 'many' })).toThrow(/--net-connections expects a whole number/);
  });
});

describe('the proxy socket in the sandbox', () => {
  const policy = resolvePolicy({ overrides: { network: { mode: 'restricted', allowedHosts: ['a.com'] } } });
  const plan = (egressSocket: string | null) => testPlan(policy, { rootfs: '/r', workspace: '/w', command: ['/usr/bin/true'], egressSocket });
  const fds = { seccomp: null, ready: null, info: null, sources: 8 };

  it('bwrap: bound read-only at /run/pawl/egress.sock, in an empty network namespace', () => {
    const a = bwrapArgs(plan('/var/lib/pawl/runs/ID/egress.sock'), fds);
    expect(a).toContain('--unshare-net');
    const i = a.indexOf('/var/lib/pawl/runs/ID/egress.sock');
    expect(a.slice(i - 1, i + 2)).toEqual(['--ro-bind', '/var/lib/pawl/runs/ID/egress.sock', EGRESS_SOCKET]);
    // No socket of the run: nothing is bound there (the program's argv may still name the path).
    const b = bwrapArgs(plan(null), fds);
    expect(b.filter((x, j) => x === EGRESS_SOCKET && b[j - 2] === '--ro-bind')).toEqual([]);
  });

  it('OCI: the same bind, and a network namespace', () => {
    const c = ociConfig(testPlan(policy, { rootfs: '/r', workspace: '/w', command: ['/usr/bin/true'], egressSocket: '/b/egress.sock' }), {
      root: '/b/root', cgroupsPath: '/pawl/run-ID', hostIds: { user: 600_000, root: 600_001 }, userns: true,
    });
    expect(c.mounts).toContainEqual({ destination: EGRESS_SOCKET, type: 'bind', source: '/b/egress.sock', options: ['rbind', 'ro', 'nosuid', 'nodev'] });
    expect(c.linux.namespaces).toContainEqual({ type: 'network' });
  });
});

describe('verdicts from the proxy denials the supervisor observed', () => {
  const base: RunFacts = {
    mode: 'task', policy: resolvePolicy({ overrides: { network: { mode: 'restricted' } } }), killReason: null, exitCode: 0, signal: null, setupFailed: false,
    oomKills: 0, pidsLimitHits: 0, stderr: '', reply: { ok: false, stage: 'run', error: { name: 'Error', message: 'no data' }, violations: [] },
    replyProblem: null, seccompKills: [], refusesWithEperm: null, cpuMs: 30, workspaceBytes: 0,
  };
  const denied = ['api.example.com:443 (api.example.com is not an allowed host)'];

  it('a task failing after a denial is NetworkBlocked naming the target; without one it is TaskError', () => {
    expect(classify({ ...base, proxyDenials: denied }).error).toMatchObject({ kind: 'NetworkBlocked', message: 'no data (the egress proxy denied api.example.com:443 (api.example.com is not an allowed host))' });
    expect(classify(base).error?.kind).toBe('TaskError');
  });
  it('a program exiting non-zero after a denial is NetworkBlocked; exiting 0 still succeeds', () => {
    const program = { ...base, mode: 'program' as const, reply: null, exitCode: 1, proxyDenials: denied };
    expect(classify(program).error).toMatchObject({ kind: 'NetworkBlocked', message: expect.stringContaining('api.example.com:443') });
    expect(classify({ ...program, exitCode: 0 }).status).toBe('succeeded');
  });
  it('a limit outranks a denial', () => {
    expect(classify({ ...base, proxyDenials: denied, killReason: 'wall', reply: null, exitCode: 137 }).error?.kind).toBe('Timeout');
  });
});
