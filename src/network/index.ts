// Network policy enforcement: the egress proxy of restricted runs, host rules, address checks.
export { EgressProxy, type Denial, type EgressStats } from './proxy/server.js';
export { NetworkPolicy } from './schema.js';
export { checkAddress, checkName, compileRules, parseHostPattern } from './hosts.js';
export { specialRange, canonicalIp } from './address.js';
export { explainNetwork } from './explain.js';
