// The egress proxy on its own, against hostile and ordinary clients over its unix socket. The
// upstream is a test server on 127.0.0.2 (named in the policy, so loopback is allowed for it).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolvePolicy } from '../../src/config/resolve.js';
import { EgressProxy } from '../../src/network/index.js';
import { dnsServer, httpServer, type TestHttp } from '../helpers/net-servers.js';

let web: TestHttp;
let dir: string;

beforeAll(async () => {
  web = await httpServer('127.0.0.2');
  dir = mkdtempSync(join(tmpdir(), 'pawl-egress-'));
});
afterAll(async () => {
  await web.close();
  rmSync(dir, { recursive: true, force: true });
});

const policyFor = (extra = {}) => resolvePolicy({ overrides: { network: { mode: 'restricted', allowedHosts: [`127.0.0.2:${web.port}`], ...extra } } }).network;
let n = 0;
const start = (extra = {}, opts = {}) => EgressProxy.start({ policy: policyFor(extra), socketPath: join(dir, `p${n++}.sock`), owner: null, headTimeoutMs: 500, ...opts });

/** Send `data`, collect everything until the proxy closes the connection. */
function exchange(path: string, data: string | Buffer, { end = false } = {}): Promise<{ text: string; ms: number }> {
  return new Promise((resolve) => {
    const t = Date.now();
    const s = connect(path);
    const chunks: Buffer[] = [];
    s.on('connect', () => (end ? s.end(data) : s.write(data)));
    s.on('data', (b) => chunks.push(b));
    s.on('error', () => {});
    s.on('close', () => resolve({ text: Buffer.concat(chunks).toString('latin1'), ms: Date.now() - t }));
  });
}

const openFds = () => readdirSync('/proc/self/fd').length;

describe('egress proxy', () => {
  it('tunnels CONNECT and forwards plain HTTP to the allowed server, with the checked Host', async () => {
    const p = await start();
    const tunnel = await exchange(p['o'].socketPath, `CONNECT 127.0.0.2:${web.port} HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n`);
    expect(tunnel.text).toMatch(/^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 200 OK[\s\S]*hello from 127\.0\.0\.2$/);
    const plain = await exchange(p['o'].socketPath, `GET http://127.0.0.2:${web.port}/ HTTP/1.1\r\nHost: evil.example\r\nProxy-Connection: keep-alive\r\n\r\n`);
    expect(plain.text).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*hello from 127\.0\.0\.2$/);
    const denied = await exchange(p['o'].socketPath, `GET http://127.0.0.3:${web.port}/ HTTP/1.1\r\n\r\n`);
    expect(denied.text).toMatch(/^HTTP\/1\.1 403 Forbidden[\s\S]*127\.0\.0\.3 is not an allowed host/);
    await p.close();
    const s = p.stats();
    expect(s.connections).toBe(2);
    expect(s.denials).toEqual([{ target: `127.0.0.3:${web.port}`, reason: '127.0.0.3 is not an allowed host' }]);
  });

  it('resolves exactly the name it checked: a NUL or an escape in it is refused, never looked up', async () => {
    // Every name the test DNS server knows resolves to the allowed server; attacker.com would
    // too. With the name cut at its NUL by the resolver, "attacker.com\0.example.com" passed the
    // *.example.com check and reached attacker.com's address (found by a review, shown end to end).
    const dns = await dnsServer('127.0.0.2', { 'ok.example.com': '127.0.0.2', 'attacker.com': '127.0.0.2', 'evil.example.com': '127.0.0.2' });
    const p = await start({ allowedHosts: ['*.example.com', `127.0.0.2:${web.port}`], blockedHosts: ['evil.example.com'], allowedPorts: [web.port], dnsServers: [`127.0.0.2:${dns.port}`] });
    try {
      const path = p['o'].socketPath;
      const connectTo = (host: string) => exchange(path, Buffer.from(`CONNECT ${host}:${web.port} HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n`, 'latin1'));
      expect((await connectTo('ok.example.com')).text).toContain('hello from 127.0.0.2'); // the setup reaches the server
      const nul = await connectTo('attacker.com\0.example.com');
      expect(nul.text).toMatch(/^HTTP\/1\.1 403 [\s\S]*"attacker\.com\\u0000\.example\.com" is not a host name/);
      const escaped = await connectTo('ev\\105l.example.com'); // c-ares would look up evil.example.com
      expect(escaped.text).toMatch(/^HTTP\/1\.1 403 [\s\S]*is not a host name/);
      expect(dns.queries.filter((q) => q !== 'ok.example.com')).toEqual([]);
      // A header line with a bare LF would smuggle a second Host to the upstream server.
      const smuggled = await exchange(path, `GET http://127.0.0.2:${web.port}/ HTTP/1.1\r\nX-A: 1\nHost: other.example\r\n\r\n`);
      expect(smuggled.text).toMatch(/^HTTP\/1\.1 400 [\s\S]*CR, LF or NUL/);
    } finally {
      await p.close();
      dns.close();
    }
    // The records quote the task's bytes, in the target as in the reason.
    expect(p.stats().denials).toEqual([
      { target: `"attacker.com\\u0000.example.com":${web.port}`, reason: '"attacker.com\\u0000.example.com" is not a host name' },
      { target: `"ev\\\\105l.example.com":${web.port}`, reason: '"ev\\\\105l.example.com" is not a host name' },
    ]);
  });

  it('answers garbage with 400, an oversized head with 431, and goes on serving', async () => {
    const p = await start();
    const path = p['o'].socketPath;
    const bad = await Promise.all([
      exchange(path, Buffer.concat([Buffer.from([0, 1, 2, 255, 254]), Buffer.from('\r\n\r\n')])),
      exchange(path, 'GET / HTTP/1.1\r\n\r\n'), // not a proxy request
      exchange(path, 'CONNECT 127.0.0.2 HTTP/1.1\r\n\r\n'), // no port
      exchange(path, `CONNECT 127.0.0.2:${web.port} HTTP/1.1\r\nbad header\r\n\r\n`),
      exchange(path, `CONNECT user@127.0.0.2:${web.port} HTTP/1.1\r\n\r\n`),
      exchange(path, 'x'.repeat(64 * 1024)),
      exchange(path, 'CONNECT', { end: true }), // closes before the head ends
    ]);
    for (const r of bad.slice(0, 5)) expect(r.text).toMatch(/^HTTP\/1\.1 400 /);
    expect(bad[5]!.text).toMatch(/^HTTP\/1\.1 431 /);
    expect(bad[6]!.text).toBe('');
    const ok = await exchange(path, `CONNECT 127.0.0.2:${web.port} HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n`);
    expect(ok.text).toContain('hello from 127.0.0.2');
    await p.close();
    expect(p.stats().badRequests).toBe(7);
  });

  it('drops slowloris clients at the head timeout and still serves others', async () => {
    const p = await start();
    const path = p['o'].socketPath;
    const slow: Promise<{ text: string; ms: number }>[] = [];
    for (let i = 0; i < 100; i++) {
      slow.push(new Promise((resolve) => {
        const t = Date.now();
        const s = connect(path);
        const chunks: Buffer[] = [];
        const drip = setInterval(() => s.write('X'), 100);
        s.on('connect', () => s.write('CONNECT 127.0.0.2:1 HTTP/1.1\r\nX-Slow: '));
        s.on('data', (b) => chunks.push(b));
        s.on('error', () => {});
        s.on('close', () => {
          clearInterval(drip);
          resolve({ text: Buffer.concat(chunks).toString(), ms: Date.now() - t });
        });
      }));
    }
    await new Promise((r) => setTimeout(r, 100));
    const ok = await exchange(path, `CONNECT 127.0.0.2:${web.port} HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n`);
    const results = await Promise.all(slow);
    // 64 are read (and time out with 408), the rest are closed at once: a flood cannot pile up heads.
    expect(results.filter((r) => /^HTTP\/1\.1 408 /.test(r.text)).length).toBeGreaterThan(0);
    expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(5000);
    // The legitimate client may have been closed while the slow ones held every head slot: it
    // must then get in once they are gone.
    const again = ok.text.includes('hello') ? ok : await exchange(path, `CONNECT 127.0.0.2:${web.port} HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n`);
    expect(again.text).toContain('hello from 127.0.0.2');
    await p.close();
  });

  it('survives 1000 connection attempts and leaves no socket file or open fd behind', async () => {
    const fdsBefore = openFds();
    const p = await start({}, { headTimeoutMs: 2000 });
    const path = p['o'].socketPath;
    const sockets: Socket[] = [];
    const closed: Promise<void>[] = [];
    for (let i = 0; i < 1000; i++) {
      const s = connect(path);
      s.on('error', () => {}); // the kernel refuses some with EAGAIN once the listen backlog is full
      s.resume();
      closed.push(new Promise((r) => s.on('close', () => r())));
      s.on('connect', () => (i % 2 ? s.write(`CONNECT 127.0.0.3:${web.port} HTTP/1.1\r\n\r\n`) : s.destroy()));
      sockets.push(s);
    }
    await Promise.all(closed);
    await vi.waitFor(() => expect(p['sockets'].size).toBe(0), { timeout: 500 }); // the proxy holds nothing of them
    const ok = await exchange(path, `CONNECT 127.0.0.2:${web.port} HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n`);
    expect(ok.text).toContain('hello from 127.0.0.2');
    const held = connect(path).resume().on('error', () => {}); // a client still connected when the run ends
    await vi.waitFor(() => expect(p['sockets'].size).toBe(1), { timeout: 1000 });
    const heldClosed = new Promise((r) => held.on('close', r));
    await p.close();
    await heldClosed;
    expect(existsSync(path)).toBe(false);
    expect(await new Promise((r) => connect(path).on('error', (e: NodeJS.ErrnoException) => r(e.code)))).toBe('ENOENT');
    await new Promise((r) => setTimeout(r, 200));
    expect(openFds()).toBeLessThanOrEqual(fdsBefore + 2);
    expect(p.stats().deniedTotal).toBeGreaterThan(0);
    expect(p.stats().denials.length).toBeLessThanOrEqual(100); // kept bounded for the result
  });

  it('limits upload bandwidth too (benchmark-style: logs what it measured)', async () => {
    const p = await start({ bandwidth: { up: '128KB' } });
    const body = 'y'.repeat(384 * 1024);
    const r = await exchange(p['o'].socketPath, `POST http://127.0.0.2:${web.port}/ HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    console.log(`[net] 384 KB up at 128 KB/s: ${r.ms} ms; tx=${p.stats().txBytes}`);
    expect(r.text).toContain('hello from 127.0.0.2');
    expect(r.ms).toBeGreaterThan(2000);
    expect(r.ms).toBeLessThan(8000);
    await p.close();
  });
});
