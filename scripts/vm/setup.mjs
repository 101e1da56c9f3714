// Set-up for scripts/vm-test: the packages, Debian's kernel (its uncompressed vmlinux) and the
// initramfs, all cached under <repo>/.vm/. Idempotent. Run by vm-test under `flock .vm/.lock`:
//   node scripts/vm/setup.mjs full    ask apt for the current kernel (a newer one replaces the cache)
//   node scripts/vm/setup.mjs quick   only fill in what is missing
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S_IFCHR, S_IFDIR, S_IFREG, cpio } from './cpio.mjs';
import { GUEST_MODULES, resolveModules } from './modules.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = join(HERE, '..', '..');
export const VM = join(REPO, '.vm');
const PACKAGES = ['qemu-system-x86', 'busybox-static', 'xz-utils', 'e2fsprogs'];
// Guest init, stage 1: /init in the initramfs (busybox sh); builds the new root and switches to
// it. Stage 2: PID 1 in the new root; runs the per-run script, reports, powers off.
export const GUEST_INIT = join(HERE, 'guest-init');
export const GUEST_STAGE2 = join(HERE, 'guest-stage2');

export const log = (msg) => process.stderr.write(`vm-test: ${msg}\n`);
export class SetupError extends Error {}

const apt = (args, opts = {}) =>
  spawnSync('apt-get', ['-q', '-o', 'DPkg::Lock::Timeout=300', ...args], { stdio: ['ignore', 2, 2], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, ...opts }).status === 0;

function ensurePackages() {
  const missing = PACKAGES.filter((p) => !/ok installed/.test(spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout ?? ''));
  if (!missing.length) return;
  if (process.geteuid?.() !== 0) throw new SetupError(`missing packages (${missing.join(' ')}); run 'sudo scripts/vm-test --setup'`);
  log(`installing ${missing.join(' ')}`);
  const install = ['install', '-y', '--no-install-recommends', ...missing];
  if (!apt(install) && !(apt(['update']) && apt(install))) throw new SetupError('apt-get install failed');
}

/** The package linux-image-amd64 currently points at, e.g. linux-image-6.1.0-56-amd64; '' when apt names none. */
function kernelPackage() {
  const out = spawnSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' }).stdout ?? '';
  return /^\s*Depends:\s*(linux-image-\d\S*)/m.exec(out)?.[1] ?? '';
}

/** Runs `dpkg-deb --fsys-tarfile deb | tar -x -C dir paths...`. */
function unpackDeb(deb, dir, paths) {
  mkdirSync(dir, { recursive: true });
  return new Promise((resolve, reject) => {
    const dpkg = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'inherit'] });
    const tar = spawn('tar', ['-x', '-C', dir, ...paths], { stdio: ['pipe', 'inherit', 'inherit'] });
    dpkg.stdout.pipe(tar.stdin);
    let left = 2;
    const done = (what) => (code) => {
      if (code !== 0) reject(new SetupError(`${what} failed (exit ${code}) for ${deb}`));
      else if (--left === 0) resolve();
    };
    dpkg.on('close', done('dpkg-deb'));
    tar.on('close', done('tar'));
  });
}

/**
 * The uncompressed ELF inside a bzImage: each xz stream's magic is tried until one decompresses to
 * an ELF file (what the kernel's scripts/extract-vmlinux does, for xz only). Booting it directly
 * (PVH) skips firmware and in-guest decompression.
 */
export function extractVmlinux(img) {
  const magic = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
  for (let off = img.indexOf(magic); off >= 0; off = img.indexOf(magic, off + 1)) {
    const r = spawnSync('xz', ['-dc', '--single-stream'], { input: img.subarray(off), maxBuffer: 1024 * 1024 * 1024 });
    if (r.stdout?.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) return r.stdout;
  }
  return null;
}

/** Downloads kpkg (or, when the mirror no longer has it, the current one) into .vm/kernel/<version>; returns the version. */
async function fetchKernel(kpkg) {
  const tmp = mkdtempSync(join(VM, 'tmp.'));
  // apt drops privileges to _apt for downloads; let it write here to keep apt quiet.
  const aptUid = spawnSync('id', ['-u', '_apt'], { encoding: 'utf8' });
  if (aptUid.status === 0) chownSync(tmp, Number(aptUid.stdout), 0);
  log(`downloading ${kpkg}`);
  if (!apt(['download', kpkg], { cwd: tmp })) {
    // An old kernel vanishes from the mirror after a point release: refresh and retry.
    apt(['update']);
    kpkg = kernelPackage();
    if (!kpkg || !apt(['download', kpkg], { cwd: tmp })) throw new SetupError(`apt-get download ${kpkg} failed`);
  }
  const deb = readdirSync(tmp).find((f) => f.endsWith('.deb'));
  if (!deb) throw new SetupError(`no .deb downloaded for ${kpkg}`);
  await unpackDeb(join(tmp, deb), join(tmp, 'x'), ['./boot']);
  const vmlinux = extractVmlinux(readFileSync(join(tmp, 'x', 'boot', `vmlinuz-${kpkg.replace(/^linux-image-/, '')}`)));
  if (!vmlinux) throw new SetupError('no xz-compressed ELF found in vmlinuz');
  const kdir = kernelDir(kpkg.replace(/^linux-image-/, ''));
  mkdirSync(kdir, { recursive: true });
  renameSync(join(tmp, deb), join(kdir, 'kernel.deb'));
  writeFileSync(join(kdir, 'vmlinux'), vmlinux);
  rmSync(tmp, { recursive: true, force: true });
  return kpkg.replace(/^linux-image-/, '');
}

/** Cache key of the initramfs: the init scripts, the module list and the busybox binary. */
export function initramfsHash() {
  let bb = 'none';
  try {
    const s = statSync('/bin/busybox');
    bb = `${s.size}-${Math.floor(s.mtimeMs / 1000)}`;
  } catch {}
  const h = createHash('sha256');
  h.update(readFileSync(GUEST_INIT)).update(readFileSync(GUEST_STAGE2)).update(`\0${GUEST_MODULES.join(' ')}\0${bb}`);
  return h.digest('hex').slice(0, 16);
}

async function buildInitramfs(kdir, kver, out) {
  log(`building initramfs for ${kver}`);
  const tmp = mkdtempSync(join(VM, 'tmp.'));
  await unpackDeb(join(kdir, 'kernel.deb'), tmp, [`./lib/modules/${kver}`]);
  const modules = resolveModules(join(tmp, 'lib', 'modules', kver));
  const dir = (name) => ({ name, mode: S_IFDIR | 0o755 });
  const file = (name, data, perm = 0o644) => ({ name, mode: S_IFREG | perm, data });
  const entries = [
    ...['bin', 'dev', 'lib', 'lib/modules', 'mnt', 'newroot', 'proc', 'sys'].map(dir),
    file('bin/busybox', readFileSync('/bin/busybox'), 0o755),
    // /dev/console must exist before init starts, or init has no stdin/stdout/stderr.
    { name: 'dev/console', mode: S_IFCHR | 0o600, rdev: [5, 1] },
    file('init', readFileSync(GUEST_INIT), 0o755),
    ...modules.map((m) => file(`lib/modules/${m.name}.ko`, m.bytes)),
    file('lib/modules/order', Buffer.from(modules.map((m) => `${m.name}\n`).join(''))),
    file('stage2', readFileSync(GUEST_STAGE2), 0o755),
  ];
  for (const f of readdirSync(kdir)) if (/^initramfs-.*\.cpio$/.test(f)) rmSync(join(kdir, f));
  writeFileSync(`${out}.tmp`, cpio(entries));
  renameSync(`${out}.tmp`, out);
  rmSync(tmp, { recursive: true, force: true });
}

export const kernelVersion = () => (existsSync(join(VM, 'kernel-version')) ? readFileSync(join(VM, 'kernel-version'), 'utf8').trim() : '');
export const kernelDir = (kver) => join(VM, 'kernel', kver);

/** True when a run can start without set-up. */
export function ready() {
  const kver = kernelVersion();
  if (!kver) return false;
  const kdir = kernelDir(kver);
  const which = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { stdio: 'ignore' });
  return which.status === 0 && existsSync(join(kdir, 'vmlinux')) && existsSync(join(kdir, `initramfs-${initramfsHash()}.cpio`));
}

export async function setup(mode) {
  mkdirSync(VM, { recursive: true });
  ensurePackages();
  let kver = kernelVersion();
  if (mode === 'full' || !kver) {
    let kpkg = kernelPackage();
    if (!kpkg) {
      apt(['update']);
      kpkg = kernelPackage();
    }
    if (kpkg) kver = kpkg.replace(/^linux-image-/, '');
    else if (!kver) throw new SetupError('apt-cache depends linux-image-amd64 names no kernel package');
    else log(`apt names no kernel package; keeping cached ${kver}`);
  }
  let kdir = kernelDir(kver);
  if (!existsSync(join(kdir, 'vmlinux')) || !existsSync(join(kdir, 'kernel.deb'))) {
    kver = await fetchKernel(`linux-image-${kver}`);
    kdir = kernelDir(kver);
  }
  const out = join(kdir, `initramfs-${initramfsHash()}.cpio`);
  if (!existsSync(out)) await buildInitramfs(kdir, kver, out);
  writeFileSync(join(VM, 'kernel-version.tmp'), `${kver}\n`);
  renameSync(join(VM, 'kernel-version.tmp'), join(VM, 'kernel-version'));
  for (const other of readdirSync(join(VM, 'kernel'))) if (other !== kver) rmSync(join(VM, 'kernel', other), { recursive: true, force: true });
  for (const f of readdirSync(VM)) if (f.startsWith('tmp.')) rmSync(join(VM, f), { recursive: true, force: true });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    await setup(process.argv[2] === 'full' ? 'full' : 'quick');
  } catch (e) {
    log(`error: ${e instanceof SetupError ? e.message : e.stack}`);
    process.exit(125);
  }
}
