// Network modes on real sandboxes. Every server here is one this test starts on a loopback
// address of this machine (127.0.0.2, 127.0.0.3, 127.0.0.1 for DNS); no other address is used.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execProgram, runTask, teardownsSettled } from '../../src/index.js';
import { resolvePolicy } from '../../src/config/resolve.js';
import type { PolicyInput } from '../../src/config/policy.js';
import { checkAddress, compileRules } from '../../src/network/index.js';
import { EGRESS_SOCKET } from '../../src/rootfs/layout.js';
import { fixture, leftovers, testHost } from '../helpers/host.js';
import { dnsServer, httpServer, udpEcho, type TestHttp } from '../helpers/net-servers.js';

const host = testHost('net');
const MiB = 1024 * 1024;

let web: TestHttp; // 127.0.0.2:P, the allowed server
let otherPort: TestHttp; // 127.0.0.2:Q, not allowed
let otherHost: TestHttp; // 127.0.0.3:P, not allowed
let udp: Awaited<ReturnType<typeof udpEcho>>;
let dns: Awaited<ReturnType<typeof dnsServer>>;

beforeAll(async () => {
  web = await httpServer('127.0.0.2');
  otherPort = await httpServer('127.0.0.2');
  otherHost = await httpServer('127.0.0.3', web.port);
  udp = await udpEcho('127.0.0.2');
  dns = await dnsServer('127.0.0.1', { 'good.test': '127.0.0.2', 'loop.test': '127.0.0.1', 'meta.test': '169.254.169.254' });
});

afterAll(async () => {
  await Promise.all([web, otherPort, otherHost].map((s) => s?.close()));
  udp?.close();
  dns?.close();
  // Processes: only ours (other checkouts' sandboxes on this machine use the same id range).
  const left = await leftovers(host);
  const ours = left.processes.filter((pid) => {
    const text = ['cgroup', 'cmdline'].map((f) => { try { return readFileSync(`/proc/${pid}/${f}`, 'utf8'); } catch { return ''; } }).join(' ');
    return text.includes(host.cgroupParent) || text.includes(host.runDir);
  });
  expect({ ...left, processes: ours }).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
});

const probe = (steps: unknown[], policy: PolicyInput, trustLevel = 'limited') =>
  runTask(fixture('netsteps'), { input: { proxy: EGRESS_SOCKET, steps }, policy, trustLevel, host });

describe('network none', () => {
  // (The host's own resolver is never asked: were the namespace broken, that would leave the machine.)
  it('TCP, UDP and DNS from inside fail fast, though the servers are up on the host', async () => {
    const r = await probe([
      { kind: 'raw', host: '127.0.0.2', port: web.port },
      { kind: 'udp', host: '127.0.0.2', port: udp.port },
      { kind: 'dns', server: `127.0.0.1:${dns.port}`, name: 'good.test' },
      { kind: 'proxy', target: `127.0.0.2:${web.port}` },
    ], { network: { mode: 'none' } });
    expect(r.status).toBe('succeeded');
    const [tcp, u, viaServer, proxy] = (r.output as { results: { error?: string; ms: number }[] }).results;
    expect(tcp!.error).toMatch(/ECONNREFUSED|ENETUNREACH/);
    expect(u!.error).toMatch(/ECONNREFUSED|ENETUNREACH/);
    expect(viaServer!.error).toMatch(/ECONNREFUSED|ETIMEOUT|ENETUNREACH/);
    expect(proxy!.error).toBe('ENOENT'); // no proxy socket in mode none
    for (const step of [tcp, u, viaServer]) expect(step!.ms).toBeLessThan(3000); // no 30 s hangs
    expect(udp.received()).toBe(0);
    expect(dns.queries).not.toContain('good.test');
    expect(r.usage.net_rx_bytes).toBe(0);
  });

  it('a task that fails on a connection is NetworkBlocked, naming the target', async () => {
    const r = await probe([{ kind: 'raw', host: '127.0.0.2', port: web.port, fail: true }], { network: { mode: 'none' } });
    expect(r.error).toMatchObject({ kind: 'NetworkBlocked' });
    expect(r.error!.message).toContain(`127.0.0.2:${web.port}`);
    expect(r.violations).toContainEqual(expect.objectContaining({ kind: 'network' }));
  });
});

describe('network restricted', () => {
  const restricted = (extra: Partial<NonNullable<PolicyInput['network']>> = {}): PolicyInput => ({
    network: {
      mode: 'restricted',
      // 127.0.0.2 is loopback: reachable only because it is named, address and port.
      allowedHosts: [`127.0.0.2:${web.port}`, `good.test:${web.port}`, `loop.test:${web.port}`, `meta.test:${web.port}`, '*.internal'],
      dnsServers: [`127.0.0.1:${dns.port}`],
      ...extra,
    },
  });

  it('reaches the allowed host and port by address and by a name the policy DNS server resolves; counts the bytes', async () => {
    const r = await probe([
      { kind: 'proxy', target: `127.0.0.2:${web.port}` },
      { kind: 'proxy', target: `good.test:${web.port}` },
    ], restricted());
    expect(r.status).toBe('succeeded');
    const [byIp, byName] = (r.output as { results: { proxy: string; bytes: number }[] }).results;
    expect(byIp!.proxy).toBe('HTTP/1.1 200 Connection Established');
    expect(byName!.proxy).toBe('HTTP/1.1 200 Connection Established');
    expect(byIp!.bytes).toBeGreaterThan('hello from 127.0.0.2'.length);
    expect(dns.queries).toContain('good.test');
    expect(r.violations).toEqual([]);
    expect(r.usage.net_rx_bytes).toBe(web.sent());
    expect(r.usage.net_rx_bytes).toBe(byIp!.bytes + byName!.bytes);
    expect(r.usage.net_tx_bytes).toBeGreaterThan(0);
  });

  it('refuses another port, another host, a blocked name, names resolving to loopback or metadata, and a raw connection', async () => {
    // Safety interlock: if the address check were broken, the proxy would connect to the metadata
    // address, which this test must never do. Refuse to run the sandbox part then.
    const rules = compileRules(resolvePolicy({ overrides: restricted() }).network);
    expect(checkAddress(rules, '169.254.169.254', web.port).ok).toBe(false);
    const r = await probe([
      { kind: 'proxy', target: `127.0.0.2:${otherPort.port}` },
      { kind: 'proxy', target: `127.0.0.3:${web.port}` },
      { kind: 'proxy', target: 'metadata.google.internal:80' },
      { kind: 'proxy', target: `loop.test:${web.port}` },
      { kind: 'proxy', target: `meta.test:${web.port}` },
      { kind: 'raw', host: '127.0.0.2', port: web.port },
    ], restricted());
    expect(r.status).toBe('succeeded');
    const results = (r.output as { results: { proxy?: string; error?: string }[] }).results;
    for (const p of results.slice(0, 5)) expect(p.proxy).toMatch(/^HTTP\/1\.1 403/);
    expect(results[5]!.error).toMatch(/ECONNREFUSED|ENETUNREACH/);
    const details = r.violations.filter((v) => v.kind === 'network').map((v) => v.detail);
    expect(details).toEqual([
      `egress proxy denied 127.0.0.2:${otherPort.port}: port ${otherPort.port} is not allowed for 127.0.0.2`,
      `egress proxy denied 127.0.0.3:${web.port}: 127.0.0.3 is not an allowed host`,
      'egress proxy denied metadata.google.internal:80: metadata.google.internal is a blocked host',
      `egress proxy denied loop.test:${web.port}: loop.test resolves to 127.0.0.1 is a blocked address`,
      `egress proxy denied meta.test:${web.port}: meta.test resolves to 169.254.169.254 is a blocked address`,
    ]);
    expect(otherPort.sent() + otherHost.sent()).toBe(0);
  });

  it('a task that fails on a denial is NetworkBlocked', async () => {
    const failing = await runTask(fixture('netfail'), {
      input: { proxy: EGRESS_SOCKET, target: `127.0.0.3:${web.port}` }, policy: restricted(), host,
    });
    expect(failing.error).toMatchObject({ kind: 'NetworkBlocked' });
    expect(failing.error!.message).toContain(`127.0.0.3:${web.port}`);
  });

  it('an 11th concurrent connection waits for a free slot (overLimit wait)', async () => {
    const before = web.peak();
    const hold = { kind: 'proxy', target: `127.0.0.2:${web.port}`, path: '/hold?ms=1000' };
    const r = await probe([{ parallel: Array(11).fill(hold) }], restricted());
    expect(r.status).toBe('succeeded');
    const tunnels = (r.output as { results: { proxy: string; tunnelAt: number }[][] }).results[0]!;
    expect(tunnels.every((t) => t.proxy === 'HTTP/1.1 200 Connection Established')).toBe(true);
    const at = tunnels.map((t) => t.tunnelAt).sort((a, b) => a - b);
    console.log(`[net] tunnels established at (ms): ${at.join(', ')}`);
    // The last one got its slot only when a held response (1 s) had ended.
    expect(at[10]! - at[0]!).toBeGreaterThanOrEqual(900);
    expect(Math.max(before, web.peak())).toBeLessThanOrEqual(10);
  });

  it('an 11th concurrent connection is refused (overLimit refuse) and reported', async () => {
    const hold = { kind: 'proxy', target: `127.0.0.2:${web.port}`, path: '/hold?ms=1000' };
    const r = await probe([{ parallel: Array(11).fill(hold) }], restricted({ overLimit: 'refuse' }));
    const tunnels = (r.output as { results: { proxy: string }[][] }).results[0]!;
    expect(tunnels.filter((t) => t.proxy === 'HTTP/1.1 200 Connection Established')).toHaveLength(10);
    expect(tunnels.filter((t) => /^HTTP\/1\.1 503/.test(t.proxy))).toHaveLength(1);
    expect(r.violations.map((v) => v.detail)).toContainEqual(expect.stringContaining('connection limit of 10 reached'));
  });

  it('a 10 MB download under a 1 MB/s limit takes about 10 s; rx counts what the server sent (benchmark-style)', async () => {
    const sentBefore = web.sent();
    const r = await probe([{ kind: 'proxy', target: `127.0.0.2:${web.port}`, path: `/bytes?n=${10 * MiB}` }], restricted({ bandwidth: { down: '1MB' } }));
    expect(r.status).toBe('succeeded');
    const [dl] = (r.output as { results: { bytes: number; ms: number }[] }).results;
    const sent = web.sent() - sentBefore;
    console.log(`[net] 10 MB at 1 MB/s: ${dl!.ms} ms inside the sandbox; server sent ${sent} bytes; usage rx=${r.usage.net_rx_bytes} tx=${r.usage.net_tx_bytes}`);
    expect(dl!.bytes).toBeGreaterThan(10 * MiB);
    expect(r.usage.net_rx_bytes).toBe(sent);
    expect(dl!.ms).toBeGreaterThan(7000);
    expect(dl!.ms).toBeLessThan(20000);
  }, 60_000);

  // Depends on the harness branch: its fetch and node's http tunnel through req.egressProxy.
  const harnessTunnels = readFileSync(join(import.meta.dirname, '..', '..', 'src', 'task', 'harness.ts'), 'utf8').includes('egressProxy');
  it.runIf(harnessTunnels)('the harness fetch (sync and async) and node http reach the allowed server and nothing else', async () => {
    const r = await runTask(fixture('netfetch'), {
      input: { allowed: `http://127.0.0.2:${web.port}/`, denied: `http://127.0.0.3:${web.port}/` }, policy: restricted(), host,
    });
    expect(r.status).toBe('succeeded');
    expect(r.output).toMatchObject({ sync: 200, async: 200, http: 200, deniedSync: 'NetworkError', deniedHttp: 'error' });
    expect(r.violations.map((v) => v.detail)).toContainEqual(expect.stringContaining(`127.0.0.3:${web.port}`));
  });

  it.each(['runc', 'crun'] as const)('%s binds the proxy socket too, with the same rules', async (runtime) => {
    const r = await probe([
      { kind: 'proxy', target: `127.0.0.2:${web.port}` },
      { kind: 'proxy', target: `127.0.0.3:${web.port}` },
    ], { ...restricted(), runtime });
    const [ok, denied] = (r.output as { results: { proxy: string }[] }).results;
    expect(ok!.proxy).toBe('HTTP/1.1 200 Connection Established');
    expect(denied!.proxy).toMatch(/^HTTP\/1\.1 403/);
    expect(r.violations.map((v) => v.detail)).toEqual([`egress proxy denied 127.0.0.3:${web.port}: 127.0.0.3 is not an allowed host`]);
  });

  it('a program under exec reaches the proxy at the same path; failing after a denial is NetworkBlocked', async () => {
    const script = (target: string) => `const s = require('net').connect('${EGRESS_SOCKET}', () => s.write('CONNECT ${target} HTTP/1.1\\r\\n\\r\\n'));
      s.on('data', (b) => { const line = b.toString().split('\\r\\n')[0]; console.log(line); process.exit(/ 200 /.test(line) ? 0 : 3); });`;
    const ok = await execProgram(['/usr/bin/node', '-e', script(`127.0.0.2:${web.port}`)], { policy: restricted(), host });
    expect(ok.status).toBe('succeeded');
    expect(ok.stdout).toContain('HTTP/1.1 200 Connection Established');
    const denied = await execProgram(['/usr/bin/node', '-e', script(`127.0.0.3:${web.port}`)], { policy: restricted(), host });
    expect(denied.error).toMatchObject({ kind: 'NetworkBlocked' });
    expect(denied.error!.message).toContain(`127.0.0.3:${web.port} (127.0.0.3 is not an allowed host)`);
  });

  it('leaves no socket file or mount behind', async () => {
    await teardownsSettled(); // the task runs' teardowns came after their results
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain('egress.sock');
    expect(await leftovers(host)).toMatchObject({ scratch: [] });
  });
});

describe('network full', () => {
  it("uses the host's network (here: the loopback test server); bytes are not counted (null)", async () => {
    const r = await probe([{ kind: 'raw', host: '127.0.0.2', port: web.port }], { network: { mode: 'full' } });
    expect((r.output as { results: { connected?: boolean }[] }).results[0]).toMatchObject({ connected: true });
    expect(r.usage.net_rx_bytes).toBeNull();
    expect(r.usage.net_tx_bytes).toBeNull();
  });
});

describe('pawl explain', () => {
  it('prints the effective network rules and the socket bind', async () => {
    const { execa } = await import('execa');
    const cli = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
    const r = await execa('node', [cli, 'explain', '--network', 'restricted', '--allow-host', '*.example.com', '--allow-host', '10.1.2.3:8080',
      '--block-host', 'bad.example.com', '--dns', '127.0.0.1:5353', '--net-down', '2MB/s', '--net-connections', '3', '--net-over-limit', 'refuse'], { reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('allowed hosts   *.example.com (ports 80, 443), 10.1.2.3:8080');
    expect(r.stdout).toContain('blocked hosts   169.254.169.254, metadata.google.internal, localhost, 127.0.0.1, ::1, bad.example.com');
    expect(r.stdout).toContain('dns             127.0.0.1:5353');
    expect(r.stdout).toContain('bandwidth       down 2MB/s, up 1MB/s');
    expect(r.stdout).toContain('connections     at most 3 at once; more are refused (503)');
    expect(r.stdout).toMatch(/--ro-bind \S+\/ID\/egress\.sock \/run\/pawl\/egress\.sock/);
  });
});
