// The rest of the host: the runtimes, the rootfs, storage for disk limits, the state dir.
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostConfig } from '../config/host.js';
import type { Policy } from '../config/policy.js';
import { BINARIES } from '../runtime/oci/cli.js';
import { BWRAP } from '../runtime/bwrap/argv.js';
import { closedAncestor, rootfsStatus } from '../rootfs/index.js';
import { storagePlan } from '../supervisor/host.js';
import { check, type Check } from './report.js';
import { version } from './lsm.js';
import { assertTrustedStateDir } from '../hostfacts/trusted-dir.js';

export async function runtimeChecks(policy: Policy): Promise<Check[]> {
  const bwrap = existsSync(BWRAP) ? await version(BWRAP, ['--version']) : null;
  const out = [check('bwrap', bwrap ? 'ok' : 'missing', bwrap ? `${BWRAP}: ${bwrap}` : `${BWRAP} is not installed: the default runtime cannot run`, 'apt-get install bubblewrap', policy.runtime === 'bwrap')];
  for (const name of ['runc', 'crun'] as const) {
    const path = BINARIES[name].paths.find((p) => existsSync(p));
    const v = path ? await version(path, ['--version']) : null;
    out.push(check(name, v ? 'ok' : 'missing', v ? `${path}: ${v}` : `not installed (looked for ${BINARIES[name].paths.join(', ')}): --runtime ${name} is refused`, `apt-get install ${BINARIES[name].pkg}`, policy.runtime === name));
  }
  return out;
}

export async function rootfsCheck(host: HostConfig): Promise<Check> {
  try {
    const s = await rootfsStatus(host);
    if (s.current) return check('rootfs', 'ok', `built for the current node, libraries, recipe and harness: ${s.current}`, null, false);
    // Not a gap in enforcement: the first run builds it (and pays for it).
    return check('rootfs', 'degraded', s.older.length ? `not built for the current sources (the index knows ${s.older.length} older tree(s)): the next run builds it` : `not built yet under ${join(host.stateDir, 'rootfs')}: the first run builds it`, 'pawl rootfs build', false);
  } catch (e) {
    return check('rootfs', 'missing', `cannot be built: ${(e as Error).message}`, 'npm run build (the harness is part of the rootfs), then pawl rootfs build', true);
  }
}

export async function storageChecks(host: HostConfig, policy: Policy): Promise<Check[]> {
  try {
    const plan = await storagePlan(host, policy, join(host.stateDir, 'rootfs'));
    const io = plan.degraded.filter((d) => d.startsWith('io-limits'));
    const ws = plan.degraded.filter((d) => d.startsWith('workspace-fs'));
    return [
      io.length
        ? check('disk rate limits', 'degraded', io.join('; '), `put ${host.runDir} and ${host.stateDir} on a disk, LVM or md device (README "Storage"); storage.requireIoDevice makes this fatal`, true)
        : check('disk rate limits', 'ok', plan.ioDevices.length ? `throttled on ${plan.ioDevices.join(', ')}${plan.notNeeded.length ? `; ${plan.notNeeded.join('; ')}` : ''}` : plan.notNeeded.join('; ') || 'nothing to throttle', null, true),
      ws.length
        ? check('workspace size', 'degraded', ws.join('; '), 'run pawl as root on a host with loop devices and e2fsprogs (mkfs.ext4)', true)
        : check('workspace size', 'ok', '/workspace gets an ext4 image of its own per run (hard size and inode limits)', null, true),
    ];
  } catch (e) {
    return [check('disk rate limits', 'missing', (e as Error).message, 'see README "Storage"', true)];
  }
}

export async function stateDirCheck(host: HostConfig): Promise<Check> {
  const s = await stat(host.stateDir).catch(() => null);
  const uid = process.geteuid?.() ?? 0;
  if (!s) return check('state dir', 'degraded', `${host.stateDir} does not exist yet: the first run creates it`, `mkdir -m 0755 ${host.stateDir}`, false);
  if (!s.isDirectory()) return check('state dir', 'missing', `${host.stateDir} is not a directory`, `remove it; pawl creates ${host.stateDir}`, true);
  // The rootfs and the host-facts cache are trusted: nobody else may write there, nor change a dir
  // on the way (runs refuse it the same way).
  try {
    assertTrustedStateDir(host.stateDir, host.runDir, { make: false });
  } catch (e) {
    return check('state dir', 'missing', (e as Error).message, `a state dir of this user's (PAWL_STATE_DIR), or chown/chmod the path named`, true);
  }
  if (s.uid !== uid) {
    return check('state dir', 'missing', `${host.stateDir} is root's: this user (uid ${uid}) cannot keep a rootfs or runs there`, `PAWL_STATE_DIR=<a dir of this user's>`, true);
  }
  // Run as root, sandboxes run as other users, who reach the rootfs below it as others.
  const rootfs = join(host.stateDir, 'rootfs');
  const closed = closedAncestor(existsSync(rootfs) ? rootfs : host.stateDir);
  if (closed) {
    return check('state dir', 'missing', `${closed.dir} has mode ${closed.mode.toString(8)}: the sandboxes' users cannot pass through it to the rootfs`, `chmod o+x ${closed.dir}`, true);
  }
  return check('state dir', 'ok', `${host.stateDir} (uid ${s.uid}, mode ${(s.mode & 0o777).toString(8)}); runs in ${host.runDir}`, null, true);
}
