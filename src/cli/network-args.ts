// Network flags -> policy.network (parsing only; the schema validates hosts, ports and rates).
import type { PolicyInput } from '../config/policy.js';
import { NetworkPolicy } from '../network/schema.js';
import { PawlError } from '../errors.js';
import type { NETWORK_OPTIONS, Values } from './args.js';

const whole = (flag: string, v: string) => {
  if (!/^\d+$/.test(v.trim())) throw new PawlError('InvalidPolicy', `--${flag} expects a whole number, got "${v}"`);
  return Number(v);
};
/** "1MB/s" and "1MB" mean the same rate. */
const rate = (v: string) => v.replace(/\/s$/i, '');

export function networkFromFlags(v: Values<typeof NETWORK_OPTIONS>): PolicyInput['network'] | undefined {
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
