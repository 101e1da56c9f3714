// The effective network rules of a policy, one line each, for `pawl explain`.
import { formatSize } from '../config/units.js';
import { EGRESS_SOCKET } from '../rootfs/layout.js';
import type { NetworkPolicy } from './schema.js';

export function explainNetwork(n: NetworkPolicy): string[] {
  if (n.mode === 'none') return ['none: an empty network namespace (loopback only); every connection fails at once'];
  if (n.mode === 'full') return ["full: the host's network namespace; nothing is filtered, net bytes are not counted"];
  const allowedPorts = n.allowedPorts.join(', ');
  return [
    `restricted: an empty network namespace; egress only through the proxy at ${EGRESS_SOCKET} (HTTP CONNECT, plain HTTP)`,
    `allowed hosts   ${n.allowedHosts.length ? n.allowedHosts.map((h) => (/:\d+$/.test(h) ? h : `${h} (ports ${allowedPorts})`)).join(', ') : '(none: every request is denied)'}`,
    `allowed ports   ${allowedPorts} (for entries without their own port)`,
    `blocked hosts   ${n.blockedHosts.join(', ') || '(none)'} (unless an allowed entry names the very host)`,
    'addresses       loopback, link-local/metadata, private, unspecified, multicast and reserved addresses are refused unless an allowed entry names the address',
    `dns             ${n.dnsServers.length ? n.dnsServers.join(', ') : "the host's resolver"} (resolved by the proxy; it connects to the address it checked)`,
    `bandwidth       down ${formatSize(n.bandwidth.down)}/s, up ${formatSize(n.bandwidth.up)}/s (all connections together)`,
    `connections     at most ${n.maxConnections} at once; more ${n.overLimit === 'wait' ? 'wait for a free one' : 'are refused (503)'}`,
    'exec programs   run behind node /opt/pawl/egress-forward.mjs: HTTP_PROXY/HTTPS_PROXY (and lower case) = http://127.0.0.1:PORT inside the sandbox, relayed byte for byte to the proxy socket; NO_PROXY unset',
  ];
}
