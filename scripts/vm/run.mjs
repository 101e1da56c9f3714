// One VM run for scripts/vm-test: the QEMU command line (the boot recipe of
// /work/shared/VM-RECIPE.md: -M microvm, the uncompressed vmlinux through PVH, the host's TSC
// rate on the command line), the accelerator choice, the per-run guest script and scratch disk.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, SetupError, VM, initramfsHash, kernelDir, kernelVersion, log } from './setup.mjs';

// setpriv --pdeathsig: QEMU and the watchdog die with vm-test even when it is killed with SIGKILL.
const PDEATH = spawnSync('sh', ['-c', 'command -v setpriv'], { stdio: 'ignore' }).status === 0 ? ['setpriv', '--pdeathsig', 'KILL', '--'] : [];

function tscKhz() {
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
  return mhz ? Math.floor(Number(mhz) * 1000) : 0;
}

/** argv of QEMU with `append` added to the kernel command line. */
export function qemuArgv(accel, append) {
  const kdir = kernelDir(kernelVersion());
  const tsc = tscKhz();
  // microvm has no HPET or PM timer; TSC calibration against nothing hung boots under TCG.
  const cmdline = ['panic=-1', ...append, ...(tsc ? [`tsc_early_khz=${tsc}`] : [])].join(' ');
  return [
    ...PDEATH, 'qemu-system-x86_64', '-M', 'microvm', '-nodefaults', '-no-user-config', '-display', 'none',
    '-serial', 'stdio', '-no-reboot', '-m', process.env.PAWL_VM_MEMORY || '3G', '-smp', process.env.PAWL_VM_CPUS || '2',
    '-kernel', join(kdir, 'vmlinux'), '-initrd', join(kdir, `initramfs-${initramfsHash()}.cpio`), '-append', cmdline,
    ...(accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max']),
  ];
}

/** KVM when it works, else TCG; cached per host boot. */
export function chooseAccel() {
  const forced = process.env.PAWL_VM_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return forced;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return 'tcg';
  }
  // kvm_pvm (the PVM flavour of KVM) runs an ordinary guest extremely slowly and then stops with
  // "KVM internal error"; it is not worth probing.
  if (existsSync('/sys/module/kvm_pvm')) return 'tcg';
  const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const cache = join(VM, `accel.${boot}`);
  if (existsSync(cache)) return readFileSync(cache, 'utf8').trim();
  for (const f of readdirSync(VM)) if (f.startsWith('accel.')) rmSync(join(VM, f));
  // A working KVM reaches the probe's init in well under a second; TCG needs ~2.5 s. Anything
  // slower than 6 s is not worth using.
  const [cmd, ...args] = qemuArgv('kvm', ['pawl_probe=1']);
  const out = spawnSync('timeout', ['-k', '2', '6', cmd, ...args], { stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8' }).stdout ?? '';
  const accel = out.includes('PAWL-PROBE-OK') ? 'kvm' : 'tcg';
  if (accel === 'tcg') log('/dev/kvm exists but a probe boot failed; using TCG (software emulation)');
  writeFileSync(cache, `${accel}\n`);
  return accel;
}

/** POSIX shell quoting. */
const q = (s) => `'${String(s).replaceAll("'", "'\\''")}'`;

/** The script the guest runs: the caller's PATH, CI and PAWL_* environment, cwd and command. */
function guestScript(command) {
  const env = Object.entries(process.env).filter(([k]) => k.startsWith('PAWL_') && k !== 'PAWL_IN_VM');
  return [
    '#!/bin/bash',
    '# written by scripts/vm-test for one run',
    `export PATH=${q(process.env.PATH ?? '/usr/bin:/bin')}`,
    'export HOME=/root USER=root LOGNAME=root SHELL=/bin/bash PAWL_IN_VM=1',
    process.env.CI === undefined ? 'unset CI' : `export CI=${q(process.env.CI)}`,
    ...env.map(([k, v]) => `export ${k}=${q(v)}`),
    `cd -- ${q(process.cwd())} || exit 125`,
    `exec ${command.map(q).join(' ')}`,
    '',
  ].join('\n');
}

/** Leftovers of runs whose vm-test was killed with SIGKILL (named after its pid). */
function sweepRuns(runs) {
  for (const d of readdirSync(runs)) {
    const pid = Number(d.split('.')[0]);
    try {
      process.kill(pid, 0);
    } catch {
      rmSync(join(runs, d), { recursive: true, force: true });
    }
  }
}

/**
 * Boots the VM, runs `command` in it, resolves with its exit status (124 on timeout; SetupError
 * when the guest reported nothing). QEMU's serial console (the command's stdout and stderr) goes
 * to our stdout.
 */
export async function runVm(command, { timeoutS, verbose }) {
  if (!/^\/[A-Za-z0-9._/+-]*$/.test(REPO)) throw new SetupError(`the repository path '${REPO}' has characters the kernel command line cannot carry`);
  const accel = chooseAccel();
  const runs = join(VM, 'runs');
  mkdirSync(runs, { recursive: true });
  sweepRuns(runs);
  const run = mkdtempSync(join(runs, `${process.pid}.`));
  let qemu = null;
  const stop = () => qemu?.exitCode === null && qemu.kill('SIGKILL');
  const onSignal = (sig, code) => () => {
    stop();
    rmSync(run, { recursive: true, force: true });
    process.exit(code);
  };
  const handlers = [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]].map(([s, c]) => [s, onSignal(s, c)]);
  for (const [s, h] of handlers) process.on(s, h);
  try {
    writeFileSync(join(run, 'guest.sh'), guestScript(command));
    const disk = join(run, 'disk.img');
    writeFileSync(disk, '');
    spawnSync('truncate', ['-s', process.env.PAWL_VM_DISK_SIZE || '8G', disk]);
    const mkfs = spawnSync('mkfs.ext4', ['-q', '-F', '-L', 'pawl-scratch', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', disk], { stdio: ['ignore', 2, 2] });
    if (mkfs.status !== 0) throw new SetupError('mkfs.ext4 failed');
    const [cmd, ...args] = [
      ...qemuArgv(accel, [`pawl_repo=${REPO}`, `pawl_run=${run}`, ...(verbose ? ['console=ttyS0', 'pawl_debug=1'] : [])]),
      '-fsdev', 'local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap',
      '-device', 'virtio-9p-device,fsdev=hostroot,mount_tag=hostroot',
      '-fsdev', `local,id=project,path=${REPO},security_model=none,multidevs=remap`,
      '-device', 'virtio-9p-device,fsdev=project,mount_tag=project',
      '-drive', `id=scratch,file=${disk},format=raw,if=none,cache=unsafe,discard=unmap`,
      '-device', 'virtio-blk-device,drive=scratch',
    ];
    if (verbose) log(`kernel ${kernelVersion()}, accel ${accel}: ${cmd} ${args.join(' ')}`);
    qemu = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    const exit = new Promise((resolve) => qemu.on('close', (code, signal) => resolve(signal ?? code)));
    let timer;
    const timedOut = new Promise((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutS * 1000)));
    const how = await Promise.race([exit, timedOut]);
    clearTimeout(timer);
    if (how === 'timeout') {
      log(`timed out after ${timeoutS}s; killing QEMU`);
      qemu.kill('SIGTERM');
      const gone = await Promise.race([exit.then(() => true), new Promise((r) => setTimeout(() => r(false), 2000))]);
      if (!gone) qemu.kill('SIGKILL');
      await exit;
      return 124;
    }
    const statusFile = join(run, 'status');
    if (!existsSync(statusFile)) throw new SetupError(`the guest reported no exit status (QEMU exit ${how}); rerun with --verbose to see the boot`);
    const status = readFileSync(statusFile, 'utf8').trim();
    if (!/^\d+$/.test(status)) throw new SetupError(`guest wrote a bad status '${status}'`);
    return Number(status);
  } finally {
    stop();
    for (const [s, h] of handlers) process.off(s, h);
    rmSync(run, { recursive: true, force: true });
  }
}
