// `pawl exec` programs in network mode restricted get a standard HTTP proxy on 127.0.0.1 inside
// the sandbox (src/network/forwarder.ts), relayed to the supervisor's egress proxy, which alone
// decides: an unmodified client (busybox wget, honouring http_proxy) reaches the allowed host, a
// host the policy does not name is denied and reported. With no network, no forwarder runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execProgram } from '../../src/index.js';
import type { PolicyInput } from '../../src/config/policy.js';
import { leftovers, testHost } from '../helpers/host.js';
import { httpServer, type TestHttp } from '../helpers/net-servers.js';

const host = testHost('fwd');
const BUSYBOX = { src: '/usr/bin/busybox', dst: '/bin/busybox' };
let web: TestHttp; // 127.0.0.2:P, allowed
let other: TestHttp; // 127.0.0.3:P, not allowed

beforeAll(async () => {
  web = await httpServer('127.0.0.2');
  other = await httpServer('127.0.0.3', web.port);
});

afterAll(async () => {
  await Promise.all([web, other].map((s) => s?.close()));
  expect(await leftovers(host)).toMatchObject({ cgroups: [], scratch: [], mounts: [] });
});

const policy = (mode: 'restricted' | 'none', env: Record<string, string> = {}): PolicyInput => ({
  network: mode === 'restricted' ? { mode, allowedHosts: [`127.0.0.2:${web.port}`] } : { mode },
  filesystem: { binds: [BUSYBOX] },
  env,
});
const exec = (sh: string, p: PolicyInput) => execProgram(['/bin/busybox', 'sh', '-c', sh], { policy: p, host });

describe('HTTP_PROXY forwarder for exec programs', () => {
  it('an unmodified HTTP client reaches the allowed host through the proxy variables', async () => {
    const r = await exec(`/bin/busybox wget -q -O - http://127.0.0.2:${web.port}/hello`, policy('restricted'));
    expect(r.status, `${JSON.stringify(r.error)} ${r.stderr}`).toBe('succeeded');
    expect(r.stdout.length).toBeGreaterThan(0);
    expect(r.violations).toEqual([]);
    expect(r.usage.net_rx_bytes).toBeGreaterThan(0); // it went through the supervisor's proxy
  });

  it('a host the policy does not allow is denied by the supervisor and reported', async () => {
    const r = await exec(`/bin/busybox wget -q -O - http://127.0.0.3:${web.port}/`, policy('restricted'));
    expect(r.error).toMatchObject({ kind: 'NetworkBlocked' });
    expect(r.violations).toEqual([{ kind: 'network', detail: `egress proxy denied 127.0.0.3:${web.port}: 127.0.0.3 is not an allowed host`, source: 'supervisor' }]);
  });

  it('sets all four proxy variables to loopback, removes NO_PROXY, and passes the exit status through', async () => {
    const r = await exec('env | /bin/busybox grep -i _proxy | /bin/busybox sort; exit 7', policy('restricted', { NO_PROXY: '127.0.0.3', no_proxy: '*' }));
    expect(r.exit_code).toBe(7);
    const lines = r.stdout.trim().split('\n');
    expect(lines.map((l) => l.split('=')[0])).toEqual(['HTTPS_PROXY', 'HTTP_PROXY', 'http_proxy', 'https_proxy']);
    for (const l of lines) expect(l).toMatch(/=http:\/\/127\.0\.0\.1:\d+$/);
    const killed = await exec('kill -9 $$', policy('restricted'));
    expect(killed.signal).toBe('SIGKILL');
  });

  it('network none: no forwarder and no proxy variables', async () => {
    const r = await exec('env | /bin/busybox grep -ic _proxy; /bin/busybox ps -o comm', policy('none'));
    expect(r.stdout.split('\n')[0]).toBe('0');
    expect(r.stdout).not.toContain('node');
  });
});
