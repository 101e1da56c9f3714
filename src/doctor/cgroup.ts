// cgroup checks, from the same probe the drivers use (cgroup/probe.ts): version, each
// controller the default policy needs, v2 delegation into pawl's subtree, swap accounting.
import { access, readdir, readFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, join } from 'node:path';
import type { HostConfig } from '../config/host.js';
import { detectCgroups, type HostCgroups } from '../cgroup/probe.js';
import { check, type Check } from './report.js';

const NEEDED = { memory: 'memory limit', cpu: 'CPU quota', pids: 'process limit', io: 'disk rate limits' } as const;

const read = (p: string) => readFile(p, 'utf8').then((t) => t.trim(), () => null);
const words = (t: string | null) => (t ?? '').split(/\s+/).filter(Boolean);

export async function cgroupChecks(host: HostConfig, mountinfo?: string): Promise<Check[]> {
  let cg: HostCgroups;
  try {
    cg = await detectCgroups(mountinfo);
  } catch (e) {
    return [check('cgroup', 'missing', (e as Error).message, 'mount cgroup2 at /sys/fs/cgroup (systemd.unified_cgroup_hierarchy=1) or a v1 memory hierarchy', true)];
  }
  const out: Check[] = [];
  if (cg.version === 'v1') {
    const hybrid = cg.unified ? `hybrid: cgroup2 at ${cg.unified} holds ${words(await read(join(cg.unified, 'cgroup.controllers'))).join(' ') || 'no controller'}` : 'legacy, no cgroup2 mount';
    out.push(check('cgroup', 'ok', `v1 (${hybrid}); pawl's v1 driver enforces the limits (no memory.oom.group, no cgroup.kill: the group is frozen and killed)`, null, true));
    for (const [c, what] of Object.entries(NEEDED)) {
      const v1 = c === 'io' ? 'blkio' : c;
      const at = cg.mounts[v1];
      out.push(check(`cgroup ${c}`, at ? 'ok' : 'missing', at ? `v1 ${v1} at ${at}` : `no v1 ${v1} hierarchy is mounted: the ${what} cannot be enforced`, `mount the ${v1} controller (mount -t cgroup -o ${v1} cgroup /sys/fs/cgroup/${v1})`, true));
    }
    // v1 has no safe delegation: only root makes groups there (a user's runs failed with a raw EACCES).
    out.push(process.geteuid?.() === 0
      ? check('cgroup delegation', 'ok', `v1: pawl creates its groups as root under each hierarchy's ${host.cgroupParent}/`, null, true)
      : check('cgroup delegation', 'missing', `v1: only root can create cgroups here (v1 has no safe delegation), and pawl runs as uid ${process.geteuid?.()}`, 'run pawl as root, or on a cgroup v2 host with a delegated subtree (README "Hosts")', true));
  } else {
    const root = cg.unified!;
    const available = words(await read(join(root, 'cgroup.controllers')));
    out.push(check('cgroup', 'ok', `v2 (cgroup2 at ${root}: ${available.join(' ')})`, null, true));
    for (const [c, what] of Object.entries(NEEDED)) {
      const ok = available.includes(c);
      out.push(check(`cgroup ${c}`, ok ? 'ok' : 'missing', ok ? `v2 ${c} in ${root}/cgroup.controllers` : `${c} is not in ${root}/cgroup.controllers (bound to v1, or not built in): the ${what} cannot be enforced`, `boot with cgroup_no_v1=all, or unbind ${c} from its v1 hierarchy`, true));
    }
    out.push(await delegation(root, host.cgroupParent));
  }
  out.push(await swapCheck(cg));
  return out;
}

/** v2: can pawl's subtree take the controllers? Each ancestor must hand them down (subtree_control) or pawl must be able to write that file. */
async function delegation(root: string, parent: string): Promise<Check> {
  const want = Object.keys(NEEDED);
  const dir = join(root, parent);
  // The nearest existing directory at or above pawl's subtree decides: its controllers are what can reach it.
  let at = dir;
  while (at !== root && (await read(join(at, 'cgroup.controllers'))) === null) at = dirname(at);
  const offered = words(await read(join(at, 'cgroup.controllers')));
  const missing = want.filter((c) => !offered.includes(c));
  if (missing.length) {
    return check('cgroup delegation', 'missing', `${join(at, 'cgroup.controllers')} lacks ${missing.join(', ')}: pawl's subtree ${dir} cannot take them`, `enable them in the parent's cgroup.subtree_control (echo "+${missing.join(' +')}" > ${join(dirname(at), 'cgroup.subtree_control')}), or run pawl from a systemd unit with Delegate=yes`, true);
  }
  const control = join(at, 'cgroup.subtree_control');
  const handed = words(await read(control));
  const writable = await access(control, constants.W_OK).then(() => true, () => false);
  const notHanded = want.filter((c) => !handed.includes(c));
  if (notHanded.length && !writable) {
    return check('cgroup delegation', 'missing', `${control} does not hand down ${notHanded.join(', ')} and pawl cannot write it`, 'delegate the subtree to pawl\'s user (systemd Delegate=yes), or run pawl as root', true);
  }
  return check('cgroup delegation', 'ok', `${at === dir ? dir : `${at} (pawl's ${dir} is created below it)`} offers ${want.join(', ')}${notHanded.length ? `; pawl enables ${notHanded.join(', ')} in ${control} itself` : ''}`, null, true);
}

async function swapCheck(cg: HostCgroups): Promise<Check> {
  const active = ((await read('/proc/swaps')) ?? '').split('\n').length > 1;
  if (!active) return check('swap', 'ok', 'no swap is active: the memory limit is the whole limit', null, true);
  // v1: the root memory group has memsw files when swap is accounted; v2: any non-root group has memory.swap.max.
  const files = cg.version === 'v1'
    ? [join(cg.mounts.memory!, 'memory.memsw.limit_in_bytes')]
    : (await readdir(cg.unified!, { withFileTypes: true }).catch(() => [])).filter((d) => d.isDirectory()).map((d) => join(cg.unified!, d.name, 'memory.swap.max'));
  const found = (await Promise.all(files.map(read))).some((t) => t !== null);
  const what = cg.version === 'v1' ? files[0]! : 'memory.swap.max';
  return found
    ? check('swap', 'ok', `swap is active and accounted (${what}): pawl sets each run's swap to 0`, null, true)
    : check('swap', 'missing', `swap is active but not accounted (no ${what}): a run could swap past its memory limit`, 'boot with swapaccount=1 (v1) or a kernel with CONFIG_MEMCG_SWAP, turn swap off, or allow it with policy allowDegraded: ["swap-limit"]', true);
}
