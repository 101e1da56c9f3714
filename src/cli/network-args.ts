// Network flags -> policy.network (parsing only; the schema validates hosts, ports and rates).
import type { ParseArgsConfig } from 'node:util';
import type { PolicyInput } from '../config/policy.js';
import { NetworkPolicy } from '../network/schema.js';
import { PawlError } from '../errors.js';

export const NETWORK_OPTIONS = {
  network: { type: 'string' },
  'allow-host': { type: 'string', multiple: true },
  'allow-port': { type: 'string', multiple: true },
  'block-host': { type: 'string', multiple: true },
  dns: { type: 'string', multiple: true },
  'net-down': { type: 'string' },
  'net-up': { type: 'string' },
  'net-connections': { type: 'string' },
  'net-over-limit': { type: 'string' },
  'force-full-network': { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

type Values = { [K in keyof typeof NETWORK_OPTIONS]?: (typeof NETWORK_OPTIONS)[K] extends { multiple: true } ? string[] : (typeof NETWORK_OPTIONS)[K] extends { type: 'boolean' } ? boolean : string };

const whole = (flag: string, v: string) => {
  if (!/^\d+$/.test(v.trim())) throw new PawlError('InvalidPolicy', `--${flag} expects a whole number, got "${v}"`);
  return Number(v);
};
/** "1MB/s" and "1MB" mean the same rate. */
const rate = (v: string) => v.replace(/\/s$/i, '');

export function networkFromFlags(v: Values): PolicyInput['network'] | undefined {
  const n: NonNullable<PolicyInput['network']> = {};
  if (v.network !== undefined) n.mode = v.network as 'none';
  if (v['allow-host']?.length) n.allowedHosts = v['allow-host'];
  // --allow-port replaces the default ports; --block-host adds to the default blocked names.
  if (v['allow-port']?.length) n.allowedPorts = v['allow-port'].map((p) => whole('allow-port', p));
  if (v['block-host']?.length) n.blockedHosts = [...NetworkPolicy.shape.blockedHosts.parse(undefined), ...v['block-host']];
  if (v.dns?.length) n.dnsServers = v.dns;
  if (v['net-down'] !== undefined || v['net-up'] !== undefined) {
    n.bandwidth = { ...(v['net-down'] !== undefined ? { down: rate(v['net-down']) } : {}), ...(v['net-up'] !== undefined ? { up: rate(v['net-up']) } : {}) };
  }
  if (v['net-connections'] !== undefined) n.maxConnections = whole('net-connections', v['net-connections']);
  if (v['net-over-limit'] !== undefined) n.overLimit = v['net-over-limit'] as 'wait';
  if (v['force-full-network']) n.forceFull = true;
  return Object.keys(n).length ? n : undefined;
}
