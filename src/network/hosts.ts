// Host patterns of a network policy ("api.example.com", "*.example.com:8443", "10.1.2.3",
// "[2001:db8::1]:443") and the two checks the egress proxy makes: on the name the sandbox asked
// for, then on every address that name resolved to (the one connected to is one that passed).
import { networkInterfaces } from 'node:os';
import { canonicalIp, embeddedIpv4, specialRange } from './address.js';

export interface HostPattern {
  /** Lower-case name without a trailing dot, the suffix after "*." for a wildcard, or a canonical IP. */
  host: string;
  wildcard: boolean;
  ip: boolean;
  /** null: the policy's allowedPorts apply. */
  port: number | null;
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/** Parse "NAME[:PORT]", "*.NAME[:PORT]", "IPV4[:PORT]", "IPV6" or "[IPV6][:PORT]"; throws with the reason. */
export function parseHostPattern(text: string): HostPattern {
  let host = text.trim().toLowerCase();
  let port: number | null = null;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2] !== undefined) port = parsePort(bracketed[2], text);
  } else if ((host.match(/:/g) ?? []).length === 1) {
    const i = host.lastIndexOf(':');
    port = parsePort(host.slice(i + 1), text);
    host = host.slice(0, i);
  }
  const ip = canonicalIp(host);
  if (ip) return { host: ip, wildcard: false, ip: true, port };
  if (host.includes(':')) throw new Error(`"${text}" is not a host: write an IPv6 address as [ADDR]:PORT`);
  host = host.replace(/\.$/, '');
  const wildcard = host.startsWith('*.');
  if (wildcard) host = host.slice(2);
  const labels = host.split('.');
  if (!host || host.length > 253 || !labels.every((l) => LABEL.test(l))) {
    throw new Error(`"${text}" is not a host name${text.includes('*') ? ' (a wildcard is only "*." in front: *.example.com)' : ''}`);
  }
  return { host, wildcard, ip: false, port };
}

function parsePort(text: string, whole: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new Error(`"${whole}" has an invalid port "${text}" (1-65535)`);
  return n;
}

/**
 * A target host as the sandbox named it: an IP literal in canonical form, or a lower-case DNS name
 * (labels of letters, digits, "_" and "-"); null for anything else. What is checked is then
 * exactly what is resolved: a NUL ends the name c-ares looks up ("attacker.com\0.example.com"
 * passed "*.example.com" and resolved attacker.com), and c-ares reads "\DDD" and "\." escapes.
 */
export function normaliseHost(host: string): { host: string; ip: boolean } | null {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  const ip = canonicalIp(bare);
  if (ip) return { host: ip, ip: true };
  const name = bare.toLowerCase().replace(/\.$/, '');
  return name.length <= 253 && name.split('.').every((l) => LABEL.test(l)) ? { host: name, ip: false } : null;
}

/**
 * A target as a denial record shows it: the checked host, or for anything else the task sent its
 * first 100 characters JSON-quoted with every control character (C1 too) escaped, so the task's
 * bytes reach no log or terminal raw.
 */
export function shownHost(rawHost: string): string {
  const target = normaliseHost(rawHost);
  if (target) return target.host;
  return JSON.stringify(rawHost.slice(0, 100)).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Host match only (ports are judged separately). A wildcard matches subdomains, not the bare name. */
function hostMatches(p: HostPattern, host: string, ip: boolean): boolean {
  if (p.ip || ip) return p.ip === ip && p.host === host;
  return p.wildcard ? host.endsWith(`.${p.host}`) : p.host === host;
}

export interface Rules {
  allowed: HostPattern[];
  blocked: HostPattern[];
  ports: Set<number>;
  /**
   * This host's own addresses (the proxy reads them at its start): refused unless named, like the
   * special ranges, so an allowed name that resolves to the supervisor's public address does not
   * reach the services it listens with on every address.
   */
  own?: ReadonlySet<string>;
}

/** Every address of this host's interfaces, canonical (Rules.own). */
export function ownAddresses(): Set<string> {
  const own = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) {
    const c = canonicalIp(a.address.replace(/%.*$/, ''));
    if (c) own.add(c);
  }
  return own;
}

// The parameter names only what the rules are built from, not NetworkPolicy: schema.ts imports
// parseHostPattern from here, and a type import back would make a circle.
export function compileRules(n: { allowedHosts: readonly string[]; blockedHosts: readonly string[]; allowedPorts: readonly number[] }): Rules {
  return { allowed: n.allowedHosts.map(parseHostPattern), blocked: n.blockedHosts.map(parseHostPattern), ports: new Set(n.allowedPorts) };
}

export type Decision = { ok: true } | { ok: false; reason: string };

const portOk = (rules: Rules, p: HostPattern, port: number) => (p.port === null ? rules.ports.has(port) : p.port === port);

/**
 * Named exactly (not by a wildcard), with the port allowed: the operator's explicit word, which
 * lets a host or address through the blocked list and the special-address ranges.
 */
function namedExactly(rules: Rules, host: string, ip: boolean, port: number): boolean {
  return rules.allowed.some((p) => !p.wildcard && hostMatches(p, host, ip) && portOk(rules, p, port));
}

/** The name (or IP literal) the sandbox asked for, before any resolution. */
export function checkName(rules: Rules, rawHost: string, port: number): Decision {
  const target = normaliseHost(rawHost);
  if (!target) return { ok: false, reason: `${shownHost(rawHost)} is not a host name` };
  const { host, ip } = target;
  const blocked = rules.blocked.find((p) => hostMatches(p, host, ip) && (p.port === null || p.port === port));
  if (blocked && !namedExactly(rules, host, ip, port)) return { ok: false, reason: `${host} is a blocked host` };
  const byHost = rules.allowed.filter((p) => hostMatches(p, host, ip));
  if (byHost.length === 0) return { ok: false, reason: `${host} is not an allowed host` };
  if (!byHost.some((p) => portOk(rules, p, port))) return { ok: false, reason: `port ${port} is not allowed for ${host}` };
  if (ip) return checkAddress(rules, host, port);
  return { ok: true };
}

/** An address the name resolved to (or the literal itself): blocked or special unless named. */
export function checkAddress(rules: Rules, addr: string, port: number): Decision {
  const canonical = canonicalIp(addr);
  if (!canonical) return { ok: false, reason: `${addr} is not an IP address` };
  if (namedExactly(rules, canonical, true, port)) return { ok: true };
  if (rules.blocked.some((p) => p.ip && p.host === canonical && (p.port === null || p.port === port))) return { ok: false, reason: `${canonical} is a blocked address` };
  const special = specialRange(canonical);
  if (special) return { ok: false, reason: `${canonical} is a ${special} address` };
  // Judged by the IPv4 address inside too (NAT64, 6to4), as the special ranges are.
  if (rules.own && (rules.own.has(canonical) || rules.own.has(embeddedIpv4(canonical) ?? ''))) return { ok: false, reason: `${canonical} is an address of this host` };
  return { ok: true };
}
