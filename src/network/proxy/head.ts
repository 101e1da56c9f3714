// Reading and parsing a proxy request head from an untrusted client: bounded in size and time,
// strict about its form. Only what an HTTP/1.1 proxy needs: CONNECT host:port, or a plain-HTTP
// request in absolute form (GET http://host[:port]/path).
import type { Socket } from 'node:net';

export interface ProxyRequest {
  method: string;
  host: string;
  port: number;
  /** Plain HTTP: the origin-form path to send upstream. */
  path: string | null;
  /** Header lines as received (name, value). */
  headers: [string, string][];
  version: string;
}

export class HeadError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const END = Buffer.from('\r\n\r\n');

/** The head (up to the blank line) and whatever followed it; rejects on timeout, size or close. */
export function readHead(sock: Socket, timeoutMs: number, maxBytes: number): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err: HeadError | null, value?: { head: string; rest: Buffer }) => {
      clearTimeout(timer);
      sock.off('data', onData).off('end', onEnd).off('close', onEnd).off('error', onEnd);
      sock.pause();
      if (err) reject(err);
      else resolve(value!);
    };
    const onData = (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      const i = buf.indexOf(END);
      if (i >= 0 && i + END.length <= maxBytes) return done(null, { head: buf.subarray(0, i).toString('latin1'), rest: buf.subarray(i + END.length) });
      if (buf.length > maxBytes) done(new HeadError(431, `request head larger than ${maxBytes} bytes`));
    };
    const onEnd = () => done(new HeadError(0, 'client closed before the request head ended'));
    const timer = setTimeout(() => done(new HeadError(408, `no complete request head within ${timeoutMs} ms`)), timeoutMs);
    sock.on('data', onData).on('end', onEnd).on('close', onEnd).on('error', onEnd);
    sock.resume();
  });
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function authority(text: string, defaultPort: number | null): { host: string; port: number } {
  const m = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(text) ?? /^([^:[\]@\s/]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m) throw new HeadError(400, `"${text}" is not host:port`);
  const port = m[2] !== undefined ? Number(m[2]) : defaultPort;
  if (port === null || !(port >= 1 && port <= 65535)) throw new HeadError(400, `"${text}" has no valid port`);
  return { host: m[1]!, port };
}

export function parseHead(head: string): ProxyRequest {
  const lines = head.split('\r\n');
  const m = /^(\S+) (\S+) (HTTP\/1\.[01])$/.exec(lines[0] ?? '');
  if (!m || !TOKEN.test(m[1]!)) throw new HeadError(400, 'malformed request line');
  const [, method, target, version] = m as unknown as [string, string, string, string];
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0 || !TOKEN.test(line.slice(0, i))) throw new HeadError(400, 'malformed header line');
    // A bare CR or LF (or a NUL) in a value would end the line early for the upstream server: a
    // second Host slipped past the one the proxy sets (upstreamHead).
    if (/[\0\r\n]/.test(line)) throw new HeadError(400, 'a header line holds a CR, LF or NUL');
    headers.push([line.slice(0, i), line.slice(i + 1).trim()]);
  }
  if (method === 'CONNECT') return { method, ...authority(target, null), path: null, headers, version };
  const abs = /^http:\/\/([^/?#]+)([^#]*)$/i.exec(target);
  if (!abs) throw new HeadError(400, `a proxy request needs CONNECT or an absolute http:// URL, got "${target.slice(0, 100)}"`);
  const path = abs[2]!.startsWith('/') ? abs[2]! : `/${abs[2]!}`;
  return { method, ...authority(abs[1]!, 80), path, headers, version };
}

/** The head sent upstream for plain HTTP: origin form, no proxy headers, one request per connection. */
export function upstreamHead(r: ProxyRequest): Buffer {
  // Host is always the checked authority: a client's own Host could name another site on the
  // same server (domain fronting) than the one the policy allowed.
  const drop = new Set(['host', 'proxy-connection', 'proxy-authorization', 'connection', 'keep-alive']);
  const kept = r.headers.filter(([k]) => !drop.has(k.toLowerCase()));
  const host = r.host.includes(':') ? `[${r.host}]` : r.host;
  kept.unshift(['Host', r.port === 80 ? host : `${host}:${r.port}`]);
  const lines = [`${r.method} ${r.path} ${r.version}`, ...kept.map(([k, v]) => `${k}: ${v}`), 'Connection: close', '', ''];
  return Buffer.from(lines.join('\r\n'), 'latin1');
}
