// Name resolution for the egress proxy: through the policy's dnsServers when set (node's
// dns.Resolver, which speaks DNS itself), else the host's resolver (getaddrinfo). The proxy then
// checks every address and connects to one it checked: no second lookup a rebinding server
// could answer differently.
import { Resolver, lookup } from 'node:dns/promises';

export type Resolve = (host: string) => Promise<string[]>;

export function resolverFor(dnsServers: string[], timeoutMs = 3000): Resolve {
  if (dnsServers.length === 0) {
    // IPv4 first: a host without an IPv6 route would otherwise fail on the first address.
    return async (host) => (await lookup(host, { all: true, verbatim: false })).map((a) => a.address);
  }
  const r = new Resolver({ timeout: timeoutMs, tries: 2 });
  r.setServers(dnsServers);
  return async (host) => {
    const [v4, v6] = await Promise.allSettled([r.resolve4(host), r.resolve6(host)]);
    const addrs = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (addrs.length === 0) throw (v4.status === 'rejected' ? v4.reason : new Error(`${host} has no address`)) as Error;
    return addrs;
  };
}
