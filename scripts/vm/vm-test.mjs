// scripts/vm-test: run a command as root inside a throwaway VM whose kernel has a pure cgroup v2
// hierarchy, so pawl's cgroup v2 driver can be tested on hosts that are hybrid (v1) or lack root.
//
// Usage:
//   scripts/vm-test [--timeout SECONDS] [--verbose] [--] COMMAND [ARG]...
//   scripts/vm-test --setup        install/download/build what the VM needs, then exit
//
// Examples:
//   scripts/vm-test -- cat /sys/fs/cgroup/cgroup.controllers
//   npm run build && scripts/vm-test -- scripts/vm/suite   (what npm run test:vm does)
//
// What the guest sees (Debian's own kernel, booted by QEMU -M microvm):
//   /                  the host's / over 9p, read-only, with a tmpfs overlay for writes
//   <repo>             this repository over 9p, read-write, at the same path as on the host
//   /sys/fs/cgroup     cgroup2, with +cpuset +cpu +io +memory +pids in the root's subtree_control
//   /var/lib/pawl      ext4 on a blank sparse virtio-blk disk (/dev/vda), for io.max/io.stat
//   /tmp /run /dev/shm tmpfs; /proc /sys /dev /dev/pts mounted; loopback up
//   environment        PATH as on the host, HOME=/root, CI and PAWL_* passed through,
//                      PAWL_IN_VM=1; working directory = the one vm-test was called from
// COMMAND's stdout and stderr both arrive on this script's stdout (the guest's serial console);
// vm-test's own messages go to stderr. COMMAND's stdin is /dev/null.
//
// Exit status: COMMAND's; 124 when --timeout (default 1200 s) ran out and QEMU was killed;
// 125 when the VM could not be set up or the guest never reported a status.
//
// Everything built is cached under <repo>/.vm/ (kernel .deb, vmlinux, initramfs keyed by kernel
// version and a hash of the guest init scripts). Set-up runs by itself on first use; run
// `scripts/vm-test --setup` again to pick up a newer Debian kernel.
//
// Environment knobs: PAWL_VM_ACCEL=kvm|tcg (skip KVM detection), PAWL_VM_MEMORY (default 3G: two suite lanes side by side),
// PAWL_VM_CPUS (default 2), PAWL_VM_DISK_SIZE (default 8G).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runVm, chooseAccel } from './run.mjs';
import { SetupError, VM, kernelVersion, log, ready } from './setup.mjs';

const usage = () =>
  readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1).filter((l) => l.startsWith('//'))
    .map((l) => l.replace(/^\/\/ ?/, '')).join('\n');

/** Set-up in its own process under flock: two vm-tests at once build the cache once. */
function setup(mode) {
  mkdirSync(VM, { recursive: true });
  const r = spawnSync('flock', [join(VM, '.lock'), process.execPath, fileURLToPath(new URL('setup.mjs', import.meta.url)), mode], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) process.exit(125);
}

async function main(argv) {
  let timeoutS = 1200;
  let verbose = false;
  let doSetup = false;
  let i = 0;
  const positive = (v) => {
    if (!/^[0-9]+$/.test(v ?? '') || Number(v) <= 0) throw new SetupError('--timeout needs a positive number of seconds');
    return Number(v);
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--setup') doSetup = true;
    else if (a === '--timeout') timeoutS = positive(argv[++i]);
    else if (a.startsWith('--timeout=')) timeoutS = positive(a.slice('--timeout='.length));
    else if (a === '-v' || a === '--verbose') verbose = true;
    else if (a === '-h' || a === '--help') return void console.log(usage());
    else if (a === '--') {
      i++;
      break;
    } else if (a.startsWith('-')) throw new SetupError(`unknown option ${a} (see --help)`);
    else break;
  }
  const command = argv.slice(i);
  if (doSetup) {
    setup('full');
    log(`ready: kernel ${kernelVersion()}, accelerator ${chooseAccel()}`);
    if (!command.length) return;
  }
  if (!command.length) {
    process.stderr.write(`${usage()}\n`);
    process.exit(125);
  }
  if (!ready()) setup('quick');
  process.exitCode = await runVm(command, { timeoutS, verbose });
}

try {
  await main(process.argv.slice(2));
} catch (e) {
  log(`error: ${e instanceof SetupError ? e.message : e.stack}`);
  process.exit(125);
}
