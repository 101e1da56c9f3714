// Name resolution for the egress proxy: through the policy's dnsServers when set, else the
// servers in the host's /etc/resolv.conf. The proxy then checks every address and connects to one
// it checked: no second lookup a rebinding server could answer differently.
import { Resolver } from 'node:dns/promises';

export type Resolve = (host: string) => Promise<string[]>;

// Always c-ares (dns.Resolver), never getaddrinfo: lookups run on libuv's thread pool, which the
// supervisor's file system work shares, and a task could stall it with slow names. Without
// dnsServers, c-ares reads the host's /etc/resolv.conf (not /etc/hosts: localhost names are
// blocked anyway).
export function resolverFor(dnsServers: string[], timeoutMs = 3000): Resolve {
  const r = new Resolver({ timeout: timeoutMs, tries: 2 });
  if (dnsServers.length) r.setServers(dnsServers);
  return async (host) => {
    const [v4, v6] = await Promise.allSettled([r.resolve4(host), r.resolve6(host)]);
    const addrs = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (addrs.length === 0) throw (v4.status === 'rejected' ? v4.reason : new Error(`${host} has no address`)) as Error;
    return addrs;
  };
}
