// Programs under `pawl exec` in network mode restricted run behind the in-sandbox HTTP proxy
// endpoint (forwarder.ts): the argv the sandbox runs, as a pure function of the policy and argv.
import type { Policy } from '../config/policy.js';
import { EGRESS_SOCKET } from '../rootfs/layout.js';

/** Where the rootfs holds the forwarder (rootfs/recipe.json "egressForwarder"). */
export const FORWARDER_PATH = '/opt/pawl/egress-forward.mjs';

export function programCommand(argv: string[], policy: Policy): string[] {
  if (policy.network.mode !== 'restricted') return argv;
  return ['/usr/bin/node', FORWARDER_PATH, EGRESS_SOCKET, '--', ...argv];
}
