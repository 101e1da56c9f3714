// The AppArmor profile of a sandbox as a pure function of the resolved policy: file rules for the
// mounts pawl lays out (src/rootfs/layout.ts, the same layout bwrap's argv and the OCI config
// build), deny rules for the blocked paths, network rules from the network mode, no capabilities,
// signals only within the profile, no ptrace and no mounts. Only what changes the rules goes in,
// so policies that differ in memory or time limits share one profile (and one name).
// Generated and checked here; loading and applying it is not done yet (README).
import type { Policy } from '../../config/policy.js';
import { EGRESS_SOCKET } from '../../rootfs/layout.js';
import { NAME_PLACEHOLDER, profileName } from './name.js';
import { quotePath } from './quote.js';
import { template, type LevelPart } from './template.js';

/** Host trees no sandbox reads, unless the operator binds something inside one (then that bind wins). */
export const BLOCKED_DIRS = ['/root', '/home'] as const;

export interface AppArmorProfile {
  name: string;
  text: string;
}

function networkRules(mode: Policy['network']['mode'], deny: string): string[] {
  // node's own pipes and the harness's channels are unix sockets in every mode.
  const unix = '  network unix,';
  if (mode === 'full') {
    return [
      unix,
      ...['inet', 'inet6'].flatMap((af) => [`  network ${af} stream,`, `  network ${af} dgram,`, `  ${deny} network ${af} raw,`]),
      `  ${deny} network netlink,`,
      `  ${deny} network packet,`,
    ];
  }
  // none: only loopback exists in the sandbox's namespace; restricted: the egress proxy is a unix
  // socket (file rule below). Neither opens an inet socket.
  return [unix, ...['inet', 'inet6', 'netlink', 'packet'].map((af) => `  ${deny} network ${af},`)];
}

function mountRules(policy: Policy, level: LevelPart): string[] {
  const lines: string[] = [];
  if (policy.network.mode === 'restricted') {
    lines.push('', '  # The egress proxy (connect needs write).', `  ${quotePath(EGRESS_SOCKET)} rw,`);
  }
  if (policy.filesystem.binds.length) lines.push('', '  # Binds from the policy (a file or a tree: both forms are named).');
  for (const b of policy.filesystem.binds) {
    const dst = b.dst.replace(/\/+$/, '');
    // Read-only binds: read, and at levels that allow it, run. Writable ones are never code.
    const perms = b.readOnly ? (level.execReadOnlyBinds ? 'mrix' : 'r') : 'rwlk';
    lines.push(`  ${quotePath(dst)} ${perms},`, `  ${quotePath(dst, '/')} ${b.readOnly ? 'r' : 'rw'},`, `  ${quotePath(dst, '/**')} ${perms},`);
  }
  return lines;
}

function blockedRules(policy: Policy, deny: string): string[] {
  return BLOCKED_DIRS.map((dir) => {
    const bind = policy.filesystem.binds.find((b) => b.dst === dir || b.dst.startsWith(`${dir}/`));
    return bind ? `  # ${dir}: not denied, the policy binds ${quotePath(bind.dst)} inside it` : `  ${deny} ${dir}/{,**} rwklx,`;
  });
}

export function apparmorProfile(policy: Policy): AppArmorProfile {
  const t = template();
  const level = t.levels[policy.trustLevel];
  const facts = `trust level ${policy.trustLevel}, network ${policy.network.mode}, ${policy.filesystem.binds.length} bind(s)`;
  const body = t.text
    .replaceAll('{{POLICY}}', ` policy: ${facts}`)
    .replaceAll('{{NETWORK_MODE}}', policy.network.mode)
    .replaceAll('{{NETWORK}}', networkRules(policy.network.mode, level.deny).join('\n'))
    .replaceAll('{{MOUNTS}}', mountRules(policy, level).join('\n'))
    .replaceAll('{{BLOCKED}}', blockedRules(policy, level.deny).join('\n'))
    .replaceAll('{{DENY}}', level.deny);
  const name = profileName(body);
  return { name, text: body.replaceAll(NAME_PLACEHOLDER, name) };
}
