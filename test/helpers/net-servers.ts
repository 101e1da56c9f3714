// Servers the network tests start on loopback addresses of this machine (never anything else):
// an HTTP server that can send N bytes or hold a response, a UDP echo, and a tiny DNS server.
import { createServer, type Server } from 'node:http';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import type { AddressInfo, Socket } from 'node:net';

export interface TestHttp {
  server: Server;
  port: number;
  /** Bytes written to clients, per connection, summed once each connection closes. */
  sent: () => number;
  /** The most connections open at once. */
  peak: () => number;
  close: () => Promise<void>;
}

export async function httpServer(host: string, port = 0): Promise<TestHttp> {
  let sent = 0;
  let open = 0;
  let peak = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/bytes') {
      const n = Number(url.searchParams.get('n'));
      res.writeHead(200, { 'content-length': n });
      const chunk = Buffer.alloc(64 * 1024, 120);
      let left = n;
      const write = () => {
        while (left > 0) {
          const part = chunk.subarray(0, Math.min(left, chunk.length));
          left -= part.length;
          if (!res.write(part)) return void res.once('drain', write);
        }
        res.end();
      };
      return write();
    }
    if (url.pathname === '/hold') return void setTimeout(() => res.end('held'), Number(url.searchParams.get('ms') ?? 1000));
    // Read the whole request body before answering (an upload is measured by its end).
    req.resume();
    req.on('end', () => res.end(`hello from ${host}`));
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    peak = Math.max(peak, ++open);
    s.on('close', () => {
      sent += s.bytesWritten;
      open--;
      sockets.delete(s);
    });
  });
  await new Promise<void>((r) => server.listen(port, host, r));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    sent: () => sent,
    peak: () => peak,
    close: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

export async function udpEcho(host: string): Promise<{ port: number; received: () => number; close: () => void }> {
  const s = createSocket('udp4');
  let received = 0;
  s.on('message', (m, from) => {
    received++;
    s.send(m, from.port, from.address);
  });
  await new Promise<void>((r) => s.bind(0, host, r));
  return { port: s.address().port, received: () => received, close: () => s.close() };
}

/** A DNS server answering A queries from `zone` (name -> IPv4); other names NXDOMAIN, other types empty. */
export async function dnsServer(host: string, zone: Record<string, string>): Promise<{ port: number; queries: string[]; close: () => void }> {
  const s: UdpSocket = createSocket('udp4');
  const queries: string[] = [];
  s.on('message', (q, from) => {
    if (q.length < 17) return;
    const labels: string[] = [];
    let i = 12;
    while (i < q.length && q[i] !== 0) {
      labels.push(q.subarray(i + 1, i + 1 + q[i]!).toString('latin1'));
      i += q[i]! + 1;
    }
    const question = q.subarray(12, i + 5);
    const qtype = q.readUInt16BE(i + 1);
    const name = labels.join('.').toLowerCase();
    queries.push(name);
    const addr = zone[name];
    const answer = addr && qtype === 1
      ? Buffer.concat([Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4]), Buffer.from(addr.split('.').map(Number))])
      : Buffer.alloc(0);
    const header = Buffer.alloc(12);
    q.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(0x8180 | (name in zone ? 0 : 3), 2); // response, RD+RA, NOERROR or NXDOMAIN
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answer.length ? 1 : 0, 6);
    s.send(Buffer.concat([header, question, answer]), from.port, from.address);
  });
  await new Promise<void>((r) => s.bind(0, host, r));
  return { port: s.address().port, queries, close: () => s.close() };
}
