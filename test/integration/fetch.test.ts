// fetch inside the sandbox: Ratchet's synchronous call and the awaited standard style are one
// function; it reaches a real server with --network full, fails fast with none, tunnels through
// the egress proxy's unix socket in restricted mode, and answers only from mocks when a test
// case brings them. The server is a real HTTP server this test starts on 127.0.0.1 (a sandbox
// with network full shares the host's loopback).
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { connect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leftovers, testHost } from '../helpers/host.js';
import { runFixture } from '../helpers/ratchet.js';

const host = testHost('fetch');
const run = (name: string, opts: Parameters<typeof runFixture>[2] = {}) => runFixture(host, name, opts);

let server: Server;
let tlsServer: Server;
let base = '';
let tlsBase = '';
const seen: string[] = [];
// A self-signed certificate for 127.0.0.1, trusted inside the sandbox through NODE_EXTRA_CA_CERTS.
const certDir = mkdtempSync(join(tmpdir(), 'pawl-fetch-tls-'));
const TLS = {
  policy: { env: { NODE_EXTRA_CA_CERTS: '/run/pawl-tls/cert.pem' }, filesystem: { binds: [{ src: certDir, dst: '/run/pawl-tls' }] } },
};

async function readBody(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const c of req) s += c;
  return s;
}

beforeAll(async () => {
  const handler: RequestListener = async (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const body = await readBody(req);
    const json = (status: number, doc: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
    if (req.url === '/hello') return json(200, { greeting: 'hello', probe: req.headers['x-probe'] ?? null });
    if (req.url === '/echo') return json(200, { received: JSON.parse(body), contentType: req.headers['content-type'] });
    if (req.url === '/plain') return res.writeHead(200, { 'content-type': 'text/plain' }).end('just text');
    if (req.url === '/moved') return res.writeHead(302, { location: '/hello' }).end();
    if (req.url === '/slow') return; // never answers
    const status = /^\/status\/(\d+)$/.exec(req.url ?? '')?.[1];
    if (status) return res.writeHead(Number(status)).end('no');
    res.writeHead(404).end();
  };
  server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'ignore' });
  chmodSync(certDir, 0o755);
  chmodSync(join(certDir, 'cert.pem'), 0o644);
  tlsServer = createTlsServer({ key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(join(certDir, 'cert.pem')) }, handler);
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
  tlsBase = `https://127.0.0.1:${(tlsServer.address() as { port: number }).port}`;
});
afterAll(async () => {
  for (const s of [server, tlsServer]) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
  rmSync(certDir, { recursive: true, force: true });
  expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
});

const FULL = { network: { mode: 'full' as const } };

describe('fetch with --network full reaches a real server', () => {
  it('synchronously, as Ratchet tasks call it: GET with headers, POST with a JSON body, text', async () => {
    const r = await run('fetch-sync', { input: { url: base }, policy: FULL });
    expect(r.error).toBeUndefined();
    expect(r.output).toEqual({
      ok: true, status: 200, greeting: 'hello', sawHeader: 'sync', contentType: 'application/json',
      echoed: { city: 'Delft', n: 3 }, echoedType: 'application/json', plain: 'just text',
    });
  });

  it('awaited, in the standard style: await fetch(url), await r.json() / r.text(), .then chains', async () => {
    const r = await run('fetch-async', { input: { url: base }, policy: FULL });
    expect(r.error).toBeUndefined();
    expect(r.output).toEqual({ status: 200, greeting: 'hello', sawHeader: 'async', plain: 'just text', echoed: { via: 'options' } });
  });

  it('maps non-2xx answers to Ratchet\'s error classes as Ratchet does, follows redirects, times out', async () => {
    const r = await run('fetch-errors', { input: { url: base }, policy: FULL });
    expect(r.output).toEqual({
      401: { name: 'AuthenticationError', status: 401, isError: true, message: 'HTTP 401: Unauthorized' },
      403: { name: 'AuthorizationError', status: 403, isError: true, message: 'HTTP 403: Forbidden' },
      404: { name: 'HttpError', status: 404, isError: true, message: 'HTTP 404: Not Found' },
      429: { name: 'RateLimitError', status: 429, isError: true, message: 'HTTP 429: Too Many Requests' },
      503: { name: 'ServiceUnavailableError', status: 503, isError: true, message: 'HTTP 503: Service Unavailable' },
      redirected: 'hello',
      slow: { name: 'TimeoutError', isTimeoutError: true },
    });
  });

  it('https too (TLS verified against the CA the sandbox is given)', async () => {
    const r = await run('fetch-async', { input: { url: tlsBase }, policy: { ...FULL, ...TLS.policy } });
    expect(r.error).toBeUndefined();
    expect(r.output).toMatchObject({ status: 200, greeting: 'hello', sawHeader: 'async' });
  });

  it('node\'s own http module works too', async () => {
    const r = await run('node-http', { input: { url: base }, policy: FULL });
    expect(r.output).toEqual({ status: 200, body: { greeting: 'hello', probe: null } });
  });

  it('an unreachable server is a NetworkError naming the URL (not a policy block)', async () => {
    const r = await run('fetch-sync', { input: { url: 'http://127.0.0.1:1' }, policy: FULL });
    expect(r.error).toMatchObject({ kind: 'TaskError', name: 'NetworkError', message: expect.stringContaining('http://127.0.0.1:1/hello') });
    expect(r.violations).toEqual([]);
  });

  it('resolves names as the host does: the host\'s /etc/resolv.conf, on both backends', async () => {
    for (const runtime of ['bwrap', 'runc'] as const) {
      const r = await run('resolver', { policy: { ...FULL, runtime } });
      expect(r.output).toEqual({ resolvConf: readFileSync('/etc/resolv.conf', 'utf8') });
    }
    const none = await run('resolver');
    expect((none.output as { resolvConf: string }).resolvConf).not.toContain('nameserver');
  });

  it('fits the untrusted level\'s limits (its thread is counted by the pids controller)', async () => {
    const r = await run('fetch-sync', { input: { url: base }, trustLevel: 'untrusted', policy: { network: { ...FULL.network, forceFull: true } } });
    expect(r.error).toBeUndefined();
    expect(r.output).toMatchObject({ greeting: 'hello', echoed: { city: 'Delft', n: 3 } });
  });

  it('the backend does not matter: the same under runc', async () => {
    const r = await run('fetch-async', { input: { url: base }, policy: { ...FULL, runtime: 'runc' } });
    expect(r).toMatchObject({ runtime: 'runc', status: 'succeeded', output: { greeting: 'hello', sawHeader: 'async' } });
  });
});

describe('with --network none', () => {
  it('fetch fails fast as NetworkBlocked with the violation, in both styles, and never reaches the server', async () => {
    const before = seen.length;
    for (const name of ['fetch-sync', 'fetch-async']) {
      const r = await run(name, { input: { url: base } });
      expect(r.error).toMatchObject({ kind: 'NetworkBlocked', name: 'NetworkError' });
      expect(r.violations).toContainEqual(expect.objectContaining({ kind: 'network', detail: expect.stringContaining(`${base}/hello`) }));
    }
    expect(seen.length).toBe(before);
  });

  it('node\'s http module is refused the same way', async () => {
    const r = await run('node-http', { input: { url: base } });
    expect(r.error).toMatchObject({ kind: 'NetworkBlocked', name: 'NetworkError' });
    expect(r.violations[0]).toMatchObject({ kind: 'network', detail: expect.stringContaining('127.0.0.1') });
  });
});

describe('mocked fetch (a test case with mock.http)', () => {
  const mocks = [
    { url: '/hello', method: 'get', response: { greeting: 'mocked', probe: 'from-mock' } },
    { url: '/echo', method: 'POST', response: { status: 200, ok: true, body: { received: { city: 'Delft', n: 3 }, contentType: 'application/json' } } },
    { url: '/plain', method: 'GET', response: 'mocked text' },
  ];

  it('answers both styles from the mocks with the network off, and opens no socket even with it on', async () => {
    const before = seen.length;
    const r = await run('fetch-sync', { input: { url: base }, request: { mocks } });
    expect(r.error).toBeUndefined();
    expect(r.output).toMatchObject({ status: 200, greeting: 'mocked', sawHeader: 'from-mock', echoed: { city: 'Delft', n: 3 }, plain: 'mocked text' });
    const asyncMocks = [mocks[0]!, mocks[2]!, { url: '/echo', method: 'POST', response: { received: { via: 'options' } } }];
    const a = await run('fetch-async', { input: { url: base }, policy: FULL, request: { mocks: asyncMocks } });
    expect(a.output).toMatchObject({ greeting: 'mocked', plain: 'mocked text', echoed: { via: 'options' } });
    expect(seen.length).toBe(before);
  });

  it('a mock that is a full response with an error status raises the mapped error', async () => {
    const r = await run('fetch-sync', { input: { url: base }, request: { mocks: [{ url: '/hello', method: 'GET', response: { status: 503, ok: false, body: 'down' } }] } });
    expect(r.error).toMatchObject({ kind: 'TaskError', name: 'ServiceUnavailableError', message: 'HTTP 503: Service Unavailable' });
  });

  it('an unmatched call is a NetworkError naming the URL (the method counts)', async () => {
    const r = await run('fetch-sync', { input: { url: base }, policy: FULL, request: { mocks: [{ url: '/hello', method: 'POST', response: {} }] } });
    expect(r.error).toMatchObject({ name: 'NetworkError', message: expect.stringContaining(`${base}/hello`) });
    expect(r.error?.message).toContain('no mock matches');
  });
});

describe('network mode restricted: through the egress proxy\'s unix socket (HTTP CONNECT)', () => {
  // A stand-in for the network layer's proxy: CONNECT to the test server is allowed, anything
  // else is 403. The sandbox itself has no network at all (policy none), so the socket bound into
  // it is the only way out.
  let proxy: NetServer;
  let dir = '';
  const connects: string[] = [];
  const open = new Set<Socket>();
  const track = (sock: Socket) => {
    open.add(sock);
    sock.on('close', () => open.delete(sock));
  };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pawl-egress-'));
    chmodSync(dir, 0o755);
    proxy = createNetServer((client) => {
      track(client);
      client.once('data', (d) => {
        const target = /^CONNECT (\S+) HTTP\/1\.1\r\n/.exec(d.toString('latin1'))?.[1] ?? '';
        connects.push(target);
        if (target !== base.replace('http://', '') && target !== tlsBase.replace('https://', '')) return client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
        const [host, port] = target.split(':');
        const up = connect(Number(port), host, () => {
          client.write('HTTP/1.1 200 Connection established\r\n\r\n');
          client.pipe(up).pipe(client);
        });
        track(up);
        up.on('error', () => client.destroy());
      });
    });
    await new Promise<void>((r) => proxy.listen(join(dir, 'proxy.sock'), r));
    chmodSync(join(dir, 'proxy.sock'), 0o777);
  });
  afterAll(async () => {
    for (const sock of open) sock.destroy();
    await new Promise<void>((r) => proxy.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const restricted = () => ({
    policy: { ...TLS.policy, filesystem: { binds: [...TLS.policy.filesystem.binds, { src: dir, dst: '/run/pawl-egress' }] } },
    request: { network: 'restricted' as const, egressProxy: '/run/pawl-egress/proxy.sock' },
  });

  it('fetch (both styles) and node\'s http go through the tunnel to an allowed host', async () => {
    for (const name of ['fetch-sync', 'fetch-async', 'node-http']) {
      const r = await run(name, { input: { url: base }, ...restricted() });
      expect(r.error, name).toBeUndefined();
      expect(r.output).toMatchObject(name === 'node-http' ? { status: 200 } : { greeting: 'hello' });
    }
    expect(connects).toContain(base.replace('http://', ''));
  });

  it('https runs TLS inside the tunnel, verified end to end', async () => {
    const r = await run('fetch-sync', { input: { url: tlsBase }, ...restricted() });
    expect(r.error).toBeUndefined();
    expect(r.output).toMatchObject({ greeting: 'hello', echoed: { city: 'Delft', n: 3 } });
    expect(connects).toContain(tlsBase.replace('https://', ''));
  });

  it('a host the proxy refuses is NetworkBlocked with the violation', async () => {
    const r = await run('fetch-sync', { input: { url: 'http://10.0.0.1:8080' }, ...restricted() });
    expect(r.error).toMatchObject({ kind: 'NetworkBlocked', name: 'NetworkError' });
    expect(r.violations).toContainEqual(expect.objectContaining({ kind: 'network', detail: expect.stringContaining('10.0.0.1:8080') }));
    expect(connects).toContain('10.0.0.1:8080'); // asked, and refused by the proxy: not blocked before it
  });
});
