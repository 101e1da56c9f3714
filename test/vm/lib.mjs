// Shared by the cgroup v2 suite (test/vm/*.test.mjs). The suite runs inside the pure cgroup v2
// VM (scripts/vm-test; `npm run test:vm`) with node's own test runner, against the compiled
// library in dist/ (`npm run build` on the host first: TypeScript is slow under TCG).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stillThere } from '../helpers/procs.mjs';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DIST = join(REPO, 'dist');
export const pawl = await import(join(DIST, 'index.js'));
export const cgroups = await import(join(DIST, 'cgroup', 'index.js'));

export const MiB = 1024 * 1024;
export const CGROUP_ROOT = '/sys/fs/cgroup';
export const BUSYBOX = '/usr/bin/busybox';
/** Brings a static busybox into a sandbox as /bin/busybox. */
export const BUSYBOX_BIND = { src: BUSYBOX, dst: '/bin/busybox' };

export const fixture = (name) => join(REPO, 'test', 'fixtures', 'tasks', name);
export const example = (name) => join(REPO, 'examples', name);

/** Refuse to run anywhere but on a pure cgroup v2 host (the VM): the numbers below assume it. */
export async function requireV2() {
  const host = await cgroups.probeCgroups();
  assert.equal(host.version, 'v2', 'test/vm needs a pure cgroup v2 host: run it with `npm run test:vm` (scripts/vm-test)');
  assert.equal(host.unified, CGROUP_ROOT);
}

/** A host config of its own per test file: own cgroup subtree and scratch dir, so leak checks see only its runs. */
export function testHost(name, overrides = {}) {
  return pawl.hostConfig({ cgroupParent: `pawl-vm-${name}`, runDir: `/var/lib/pawl/vm-runs-${name}`, ...overrides });
}

/** The guest's whole mount table (pid 1's namespace, unfiltered): "mountpoint fstype source" per mount. */
export function hostMounts() {
  return readFileSync('/proc/1/mountinfo', 'utf8').split('\n').filter(Boolean).map((line) => {
    const [pre, post] = line.split(' - ');
    const [fstype, source] = post.split(' ');
    return `${pre.split(' ')[4]} ${fstype} ${source}`;
  }).sort();
}

/** Taken when a test file first imports this module, before any of its runs. */
const BASELINE = hostMounts();

/**
 * Mounts gained ("+ ...") or lost ("- ...") since BASELINE: a leaked mount, or a host mount a
 * runtime took away. The suite runs two files at a time (scripts/vm/suite): the other file's runs
 * and fixtures mount under its own dirs (/var/lib/pawl/vm-*, test-*, /tmp/pawl-vm-*), not this
 * host's to judge; everything else, and all under this host's run dir, is.
 */
function mountChanges(host) {
  // runc's own transient mounts (runc.XXXX) sit under the runtime state root of the host that
  // started it, /run/pawl/<runtime>/<cgroup parent>: another host's are the other file's.
  const otherStateRoot = (point) => {
    const m = /^\/run\/pawl\/(runc|crun)\/(.+)$/.exec(point);
    return m !== null && !`${m[2]}/`.startsWith(`${host.cgroupParent}/`);
  };
  const others = (point) => (/^(\/var\/lib\/pawl\/(test-|vm-)|\/(tmp|var\/cache)\/pawl-vm-)/.test(point) && !`${point}/`.startsWith(`${host.runDir}/`)) || otherStateRoot(point);
  const count = (list) => list.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map());
  const [before, after] = [count(BASELINE), count(hostMounts())];
  const changes = [];
  for (const k of new Set([...before.keys(), ...after.keys()])) {
    const d = (after.get(k) ?? 0) - (before.get(k) ?? 0);
    if (others(k.split(' ')[0])) continue;
    for (let i = 0; i < Math.abs(d); i++) changes.push(`${d > 0 ? '+' : '-'} ${k}`);
  }
  return changes;
}

/** Everything a run could leave behind for one host config, once this process's teardowns that went on after their results (runTask's default) have settled. */
export async function leftovers(host) {
  await pawl.teardownsSettled();
  const parentDir = join(CGROUP_ROOT, host.cgroupParent);
  const cgroupDirs = (await readdir(parentDir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => e.name);
  // gc's leftover list and the OCI mount stage count by what is in them (an empty dir is no leak).
  const inside = async (d) => (await readdir(join(host.runDir, d)).catch(() => [])).map((r) => `${d}/${r}`);
  const scratch = (await Promise.all((await readdir(host.runDir).catch(() => [])).map((n) => (n === '.leftovers' || n === '.stage' ? inside(n) : [n])))).flat();
  const processes = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    if (/^State:\s+Z/m.test(status)) continue;
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1);
    if (uid >= host.hostIdBase && uid < host.hostIdBase + host.hostIdCount && !(await otherHosts(pid, host))) processes.push(Number(pid));
  }
  return { cgroups: cgroupDirs, scratch, processes: await stillThere(processes), mounts: mountChanges(host) };
}

/**
 * Whether a process belongs to the file running beside this one: it sits in a cgroup under a
 * different pawl-* parent. (A process this host leaked is in its own parent's group, or in none.)
 */
async function otherHosts(pid, host) {
  const line = (await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '')).split('\n').find((l) => l.startsWith('0::'));
  const top = line?.slice(3).split('/')[1] ?? '';
  return top.startsWith('pawl') && top !== host.cgroupParent.split('/')[0];
}

export const NOTHING_LEFT = { cgroups: [], scratch: [], processes: [], mounts: [] };

/** The policy overrides most tests want: a full core (TCG is ~20x slower than the host) and busybox. */
export function withBusybox(policy = {}) {
  return {
    ...policy,
    filesystem: { ...policy.filesystem, binds: [BUSYBOX_BIND, ...(policy.filesystem?.binds ?? [])] },
  };
}

export function readCg(dir, file) {
  return readFileSync(join(dir, file), 'utf8');
}

/** "key value" lines as an object of numbers. */
export function keyed(text) {
  return Object.fromEntries(text.trim().split('\n').map((l) => l.trim().split(/\s+/)).map(([k, v]) => [k, Number(v)]));
}

/**
 * Runs argv directly (no sandbox) inside a cgroup: a shell writes its own pid into cgroup.procs
 * and execs the program, so the program starts inside the group. For driver-level checks only.
 */
export function runInGroup(procsFile, argv, { timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('/bin/sh', ['-c', 'echo $$ > "$1" || exit 125; shift; exec "$@"', 'in-group', procsFile, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0, pid: child.pid });
    });
  });
}

/** Starts argv in a cgroup and returns the child without waiting. */
export function startInGroup(procsFile, argv) {
  return spawn('/bin/sh', ['-c', 'echo $$ > "$1" || exit 125; shift; exec "$@"', 'in-group', procsFile, ...argv], { stdio: 'ignore' });
}

/** The cgroup v2 path of a pid ("/pawl-vm-x/run-..."), or null when it is gone. */
export function cgroupOf(pid) {
  try {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
    return line ? line.slice(3) : null;
  } catch {
    return null;
  }
}

/** Every live descendant of pid (from /proc/<pid>/stat ppids). */
export function descendants(root) {
  const parent = new Map();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z') continue;
    parent.set(Number(pid), Number(rest[1]));
  }
  const out = [];
  for (const pid of parent.keys()) {
    for (let p = parent.get(pid); p !== undefined && p > 0; p = parent.get(p)) {
      if (p === root) {
        out.push(pid);
        break;
      }
    }
  }
  return out.sort((a, b) => a - b);
}

/** True once the process is gone or a zombie. */
export function dead(pid) {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

/** A file of `bytes` random bytes on the VM's ext4 disk (/var/lib/pawl is /dev/vda), written once. */
export function scratchFile(dir, name, bytes) {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const path = join(dir, name);
  const chunk = Buffer.alloc(MiB);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  const parts = [];
  for (let n = 0; n < bytes; n += MiB) parts.push(chunk);
  writeFileSync(path, Buffer.concat(parts).subarray(0, bytes));
  return path;
}

/**
 * The rate of `busybox time -p busybox dd ... bs=1M`: this busybox's dd prints no timing line, so
 * the time is `time`'s "real" and the bytes dd's full 1 MiB records.
 */
export function ddRate(stderr) {
  const records = /^(\d+)\+0 records in/m.exec(stderr);
  const real = /^real ([\d.]+)/m.exec(stderr);
  assert.ok(records && real, `no dd/time summary in: ${stderr}`);
  const bytes = Number(records[1]) * MiB;
  return { bytes, seconds: Number(real[1]), bps: bytes / Number(real[1]) };
}

export function log(...args) {
  console.log('#', ...args);
}
