// IP addresses as bytes, and the ranges an egress proxy must not reach unless the operator names
// the address: loopback, link-local (cloud metadata lives at 169.254.169.254), private,
// unspecified, multicast, reserved. IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4)
// are judged by the address they embed, so "::ffff:127.0.0.1" is loopback too.
import { isIP } from 'node:net';

type Range = [cidr: string, label: string];

const V4_RANGES: Range[] = [
  ['0.0.0.0/8', 'unspecified'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'private (shared address space)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local (cloud metadata)'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'],
  ['192.0.2.0/24', 'reserved (documentation)'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'reserved (benchmarking)'],
  ['198.51.100.0/24', 'reserved (documentation)'],
  ['203.0.113.0/24', 'reserved (documentation)'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
];
const V6_RANGES: Range[] = [
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::/96', 'reserved (IPv4-compatible)'],
  ['100::/64', 'reserved (discard)'],
  ['2001::/32', 'reserved (Teredo)'],
  ['2001:db8::/32', 'reserved (documentation)'],
  ['fc00::/7', 'private (unique local)'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'private (site-local)'],
  ['ff00::/8', 'multicast'],
];

function v4Bytes(s: string): number[] {
  return s.split('.').map(Number);
}

function v6Bytes(s: string): number[] {
  let text = s;
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    tail.push(...v4Bytes(dotted[1]!));
    text = `${text.slice(0, -dotted[1]!.length)}0:0`;
  }
  const [head, rest] = text.includes('::') ? text.split('::') as [string, string] : [text, null];
  const groups = (part: string) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const r = rest === null ? [] : groups(rest);
  const all = rest === null ? h : [...h, ...new Array(8 - h.length - r.length).fill(0), ...r];
  const bytes = all.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** The address's bytes (4 or 16), or null when it is not an IP literal (zone ids are refused). */
export function ipBytes(s: string): number[] | null {
  const v = isIP(s);
  if (v === 4) return v4Bytes(s);
  if (v === 6 && !s.includes('%')) return v6Bytes(s);
  return null;
}

/** One spelling per address ("::ffff:7f00:1" and "::ffff:127.0.0.1" are the same), for comparing. */
export function canonicalIp(s: string): string | null {
  const b = ipBytes(s);
  if (!b) return null;
  const embedded = embeddedV4(b);
  if (b.length === 4 || (embedded && isMapped(b))) return (embedded ?? b).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return groups.join(':');
}

/** The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4), canonical; null for none. */
export function embeddedIpv4(s: string): string | null {
  const b = ipBytes(s);
  const v4 = b && b.length === 16 ? embeddedV4(b) : null;
  return v4 ? v4.join('.') : null;
}

const isMapped = (b: number[]) => b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;

/** IPv4 inside IPv6: mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:AABB:CCDD::. */
function embeddedV4(b: number[]): number[] | null {
  if (b.length !== 16) return null;
  if (isMapped(b)) return b.slice(12);
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && b.slice(4, 12).every((x) => x === 0)) return b.slice(12);
  if (b[0] === 0x20 && b[1] === 0x02) return b.slice(2, 6);
  return null;
}

function inCidr(bytes: number[], cidr: string): boolean {
  const [base, lenText] = cidr.split('/') as [string, string];
  const baseBytes = ipBytes(base)!;
  if (baseBytes.length !== bytes.length) return false;
  let len = Number(lenText);
  for (let i = 0; len > 0; i++, len -= 8) {
    const mask = len >= 8 ? 0xff : (0xff << (8 - len)) & 0xff;
    if ((bytes[i]! & mask) !== (baseBytes[i]! & mask)) return false;
  }
  return true;
}

/**
 * Why an address may not be reached without being named (e.g. "loopback"), or null for an
 * ordinary public address. Anything that is not an IP literal counts as special: fail closed.
 */
export function specialRange(addr: string): string | null {
  const b = ipBytes(addr);
  if (!b) return 'not an IP address';
  const v4 = b.length === 4 ? b : embeddedV4(b);
  if (v4) {
    const hit = V4_RANGES.find(([cidr]) => inCidr(v4, cidr));
    if (hit) return hit[1];
    if (b.length === 4 || isMapped(b)) return null;
  }
  return V6_RANGES.find(([cidr]) => inCidr(b, cidr))?.[1] ?? null;
}
