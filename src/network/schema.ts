// The network policy (zod): the single source of its defaults and types. Defaults are the
// Ratchet plan's NetworkPolicy: no network; when restricted, ports 80 and 443, the metadata and
// loopback names blocked, 5 MB/s down, 1 MB/s up, 10 concurrent connections.
import { isIP } from 'node:net';
import { z } from 'zod';
import { Size } from '../config/units.js';
import { parseHostPattern } from './hosts.js';

const MiB = 1024 ** 2;

const HostPatternText = z.string().superRefine((s, ctx) => {
  try {
    parseHostPattern(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

/** A DNS server: "IP", "IP:PORT" or "[IPV6]:PORT" (node's dns.Resolver#setServers forms). */
const DnsServer = z.string().refine((s) => {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  const [ip, port] = m ? [m[1]!, Number(m[2])] : [s, 53];
  return isIP(ip) !== 0 && port >= 1 && port <= 65535;
}, { message: 'must be an IP address, optionally with :PORT ([ADDR]:PORT for IPv6)' });

const Rate = Size.pipe(z.number().min(1024, 'must be at least 1KB per second'));

export const NetworkPolicy = z.strictObject({
  /**
   * none: a private network namespace with only loopback. restricted: the same, plus an egress
   * proxy outside the sandbox that enforces the rules below. full: the host's network.
   */
  mode: z.enum(['none', 'restricted', 'full']).default('none'),
  /** Hosts reachable in restricted mode: names, "*.suffix" wildcards or IPs, each with an optional ":PORT". */
  allowedHosts: z.array(HostPatternText).default([]),
  /** Ports an allowedHosts entry without its own port may be reached on. */
  allowedPorts: z.array(z.number().int().min(1).max(65535)).default([80, 443]),
  /** Never reached (by name or, for IPs, by resolved address) unless an allowedHosts entry names the very host. */
  blockedHosts: z.array(HostPatternText).default(['169.254.169.254', 'metadata.google.internal', 'localhost', '127.0.0.1', '::1']),
  /** Resolvers the proxy asks (the host's resolver when empty). */
  dnsServers: z.array(DnsServer).default([]),
  /** Bytes per second through the proxy, all connections of a run together. */
  bandwidth: z.strictObject({ down: Rate.default(5 * MiB), up: Rate.default(1 * MiB) }).prefault({}),
  /** Concurrent proxied connections of a run. */
  maxConnections: z.number().int().min(1).max(1000).default(10),
  /** What a connection over maxConnections gets: it waits for a free slot, or is refused at once. */
  overLimit: z.enum(['wait', 'refuse']).default('wait'),
  /** The operator's explicit consent to mode "full" at trust level untrusted (refused otherwise). */
  forceFull: z.boolean().default(false),
});
export type NetworkPolicy = z.infer<typeof NetworkPolicy>;
