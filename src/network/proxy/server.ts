// The egress proxy of one restricted run. It lives in the supervisor, outside the sandbox, on a
// unix socket bound into it (the sandbox has no network of its own). It speaks HTTP/1.1 CONNECT
// (http and https alike) and plain-HTTP absolute-form requests; every request is checked by name,
// resolved here, checked again by address, and connected to exactly the address that passed.
// Bandwidth is a token bucket per direction shared by the run's connections; concurrency is a
// counted slot per upstream connection. Everything a client sends is hostile: heads are bounded
// in size and time, pending heads and waiting connections are bounded in number.
import { chmod, chown, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { NetworkPolicy } from '../schema.js';
import { PawlError } from '../../errors.js';
import { checkAddress, checkName, compileRules, normaliseHost, ownAddresses, shownHost, type Rules } from '../hosts.js';
import { resolverFor, type Resolve } from '../resolve.js';
import { bucketFor, SLICE, type TokenBucket } from './bucket.js';
import { HeadError, parseHead, readHead, upstreamHead, type ProxyRequest } from './head.js';

export interface EgressOptions {
  policy: NetworkPolicy;
  /** Host path of the unix socket (in the run's scratch dir). */
  socketPath: string;
  /** Host uid/gid the sandbox runs as: the socket is its alone (mode 0600). null: leave as created. */
  owner: number | null;
  /** Slowloris guard: the whole request head must arrive within this. */
  headTimeoutMs?: number;
  connectTimeoutMs?: number;
  maxHeadBytes?: number;
  /** Connections still sending their head or being resolved; more are closed at once. */
  maxPendingHeads?: number;
  /** Connections waiting for a slot (overLimit "wait"); more are refused. */
  maxWaiting?: number;
}

export interface Denial {
  /** host:port as the sandbox asked for it. */
  target: string;
  reason: string;
}

export interface EgressStats {
  /** Bytes received from upstream servers (what they sent). */
  rxBytes: number;
  /** Bytes sent to upstream servers. */
  txBytes: number;
  /** Requests the policy refused, in order (at most MAX_DENIALS kept; deniedTotal counts all). */
  denials: Denial[];
  deniedTotal: number;
  /** Upstream connections made. */
  connections: number;
  /** Client connections dropped before a request was read (garbage, timeouts, floods). */
  badRequests: number;
}

const MAX_DENIALS = 100;

export class EgressProxy {
  private readonly server: Server;
  private readonly rules: Rules;
  private readonly resolve: Resolve;
  private readonly down: TokenBucket;
  private readonly up: TokenBucket;
  private readonly sockets = new Set<Socket>();
  private readonly waiting: (() => void)[] = [];
  private active = 0;
  private pendingHeads = 0;
  private closed = false;
  private readonly s: EgressStats = { rxBytes: 0, txBytes: 0, denials: [], deniedTotal: 0, connections: 0, badRequests: 0 };

  private constructor(private readonly o: Required<EgressOptions>) {
    this.rules = { ...compileRules(o.policy), own: ownAddresses() };
    this.resolve = resolverFor(o.policy.dnsServers);
    this.down = bucketFor(o.policy.bandwidth.down);
    this.up = bucketFor(o.policy.bandwidth.up);
    // Half-open: a client may end its side after the request and still read the answer.
    this.server = createServer({ allowHalfOpen: true }, (c) => void this.onClient(c));
    this.server.on('error', () => {});
  }

  static async start(opts: EgressOptions): Promise<EgressProxy> {
    // sockaddr_un holds 108 bytes: a longer path would fail (or be cut) in listen().
    if (Buffer.byteLength(opts.socketPath) > 107) {
      throw new PawlError('HostUnsupported', `the egress proxy socket path ${opts.socketPath} is longer than a unix socket allows (107 bytes): use a shorter runDir`);
    }
    const p = new EgressProxy({ headTimeoutMs: 10_000, connectTimeoutMs: 10_000, maxHeadBytes: 16 * 1024, maxPendingHeads: 64, maxWaiting: 64, ...opts });
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(opts.socketPath, () => resolve());
    });
    // Only the sandbox's user may connect (the sandbox is not started yet). Listening already: a
    // failure here closes it (the caller never gets the proxy to close).
    try {
      await chmod(opts.socketPath, 0o600);
      if (opts.owner !== null) await chown(opts.socketPath, opts.owner, opts.owner);
    } catch (e) {
      await p.close();
      throw e;
    }
    return p;
  }

  stats(): EgressStats {
    return { ...this.s, denials: [...this.s.denials] };
  }

  /** Stop listening, drop every connection, remove the socket file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sockets) s.destroy();
    this.waiting.splice(0).forEach((wake) => wake());
    await new Promise<void>((r) => this.server.close(() => r()));
    await unlink(this.o.socketPath).catch(() => {});
  }

  private track(s: Socket): Socket {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {});
    return s;
  }

  private async onClient(client: Socket): Promise<void> {
    this.track(client);
    if (this.closed || this.pendingHeads >= this.o.maxPendingHeads) {
      this.s.badRequests++;
      client.destroy();
      return;
    }
    this.pendingHeads++;
    let req: ProxyRequest;
    let rest: Buffer;
    try {
      const h = await readHead(client, this.o.headTimeoutMs, this.o.maxHeadBytes);
      rest = h.rest;
      req = parseHead(h.head);
    } catch (e) {
      this.pendingHeads--;
      this.s.badRequests++;
      const status = e instanceof HeadError ? e.status : 400;
      return status ? respond(client, status, (e as Error).message) : void client.destroy();
    }
    // As the denial records show it: the task's own bytes only quoted (shownHost).
    const host = shownHost(req.host);
    const target = `${host.includes(':') && !host.startsWith('"') ? `[${host}]` : host}:${req.port}`;
    // The name's resolution counts against the same bound as reading heads.
    const address = await this.decide(req.host, req.port).finally(() => this.pendingHeads--);
    if ('denied' in address) {
      this.deny(target, address.denied);
      return respond(client, 403, `pawl egress proxy: ${target} denied: ${address.denied}`);
    }
    if (!(await this.acquire(client))) {
      this.deny(target, `connection limit of ${this.o.policy.maxConnections} reached`);
      return respond(client, 503, `pawl egress proxy: connection limit of ${this.o.policy.maxConnections} reached`);
    }
    this.tunnel(client, req, rest, address.ip);
  }

  private deny(target: string, reason: string): void {
    this.s.deniedTotal++;
    if (this.s.denials.length < MAX_DENIALS) this.s.denials.push({ target, reason });
  }

  /** Name check, resolution, address check: the address to connect to, or why not. */
  private async decide(host: string, port: number): Promise<{ ip: string } | { denied: string }> {
    const byName = checkName(this.rules, host, port);
    if (!byName.ok) return { denied: byName.reason };
    // The very name that was checked is resolved (checkName refused anything else).
    const target = normaliseHost(host)!;
    let addrs: string[];
    try {
      addrs = target.ip ? [target.host] : await this.resolve(target.host);
    } catch (e) {
      return { denied: `cannot resolve ${host}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
    }
    let first: string | null = null;
    for (const ip of addrs) {
      const d = checkAddress(this.rules, ip, port);
      if (d.ok) return { ip };
      first ??= `${host} resolves to ${d.reason}`;
    }
    return { denied: first ?? `${host} has no address` };
  }

  /** A concurrency slot, waiting for one if the policy says so; false when refused. */
  private async acquire(client: Socket): Promise<boolean> {
    const max = this.o.policy.maxConnections;
    if (this.active < max) {
      this.active++;
      return true;
    }
    if (this.o.policy.overLimit === 'refuse' || this.waiting.length >= this.o.maxWaiting) return false;
    await new Promise<void>((wake) => {
      const w = () => {
        client.off('close', gone);
        wake();
      };
      const gone = () => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) this.waiting.splice(i, 1);
        wake();
      };
      this.waiting.push(w);
      client.once('close', gone);
    });
    if (client.destroyed || this.closed) return false;
    this.active++;
    return true;
  }

  private release(): void {
    this.active--;
    this.waiting.shift()?.();
  }

  private tunnel(client: Socket, req: ProxyRequest, rest: Buffer, ip: string): void {
    this.s.connections++;
    const upstream = this.track(connect({ host: ip, port: req.port, allowHalfOpen: true }));
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        this.release();
      }
    };
    const end = () => {
      release();
      client.destroy();
      upstream.destroy();
    };
    // Before the upstream answers: the client gets a status line saying why it failed.
    const fail = (status: number, why: string) => {
      release();
      upstream.destroy();
      respond(client, status, `pawl egress proxy: ${req.host}:${req.port}: ${why}`);
    };
    const timer = setTimeout(() => fail(504, `no answer within ${this.o.connectTimeoutMs} ms`), this.o.connectTimeoutMs);
    const early = (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(502, e.code ?? e.message);
    };
    upstream.once('error', early);
    client.on('close', end);
    upstream.once('connect', () => {
      clearTimeout(timer);
      upstream.off('error', early);
      upstream.on('error', end).on('close', end);
      if (client.destroyed) return end();
      if (req.method === 'CONNECT') client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      const first = req.method === 'CONNECT' ? rest : Buffer.concat([upstreamHead(req), rest]);
      // client -> upstream (tx, the "up" rate); upstream -> client (rx, "down").
      pump(client, upstream, this.up, first, (n) => (this.s.txBytes += n));
      pump(upstream, client, this.down, Buffer.alloc(0), (n) => (this.s.rxBytes += n), true);
    });
  }
}

/**
 * Copy src to dst at the bucket's rate, honouring dst's backpressure; src is paused while a chunk
 * is in flight, so a fast sender is slowed by TCP itself. `countOnRead`: count bytes as they
 * arrive (what the server sent), else as they are written.
 */
function pump(src: Socket, dst: Socket, bucket: TokenBucket, first: Buffer, count: (n: number) => void, countOnRead = false): void {
  const send = async (chunk: Buffer) => {
    if (countOnRead) count(chunk.length);
    for (let off = 0; off < chunk.length; off += SLICE) {
      const part = chunk.subarray(off, off + SLICE);
      await bucket.take(part.length);
      if (dst.destroyed) return;
      if (!countOnRead) count(part.length);
      if (!dst.write(part)) await drained(dst);
    }
  };
  let chain = send(first);
  src.on('data', (chunk: Buffer) => {
    src.pause();
    chain = chain.then(() => send(chunk)).then(() => {
      if (!src.destroyed) src.resume();
    });
  });
  src.on('end', () => void chain.then(() => dst.end()));
  src.resume();
}

function drained(s: Socket): Promise<void> {
  return new Promise((r) => {
    const done = () => {
      s.off('drain', done).off('close', done);
      r();
    };
    s.on('drain', done).on('close', done);
  });
}

function respond(client: Socket, status: number, message: string): void {
  if (client.destroyed) return;
  const reason = { 400: 'Bad Request', 403: 'Forbidden', 408: 'Request Timeout', 431: 'Request Header Fields Too Large', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' }[status] ?? 'Error';
  const body = `${message}\n`;
  client.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\nX-Pawl-Denied: ${status === 403 ? '1' : '0'}\r\n\r\n${body}`);
  // Read (and drop) what else it sends, so its close is seen at once; a client that never
  // reads its answer must not hold the socket open either.
  client.resume();
  setTimeout(() => client.destroy(), 1000).unref();
}
