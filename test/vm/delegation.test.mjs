// Non-root operation on cgroup v2: a subtree delegated to an unprivileged user the way systemd's
// Delegate=yes does it (the directory and its cgroup.procs, cgroup.subtree_control and
// cgroup.threads chowned to the user). pawl runs as that user (test/vm/delegated-supervisor.mjs),
// creates its per-run groups there and enforces the same limits; what the user was not given is
// refused with the reason.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CGROUP_ROOT, MiB, REPO, pawl, requireV2 } from './lib.mjs';

const UID = 1500;
const DELEGATED = join(CGROUP_ROOT, 'pawl-vm-deleg');
// Delegated too, but the supervisor does not live in it: it cannot move sandboxes there.
const OTHER = join(CGROUP_ROOT, 'pawl-vm-deleg-other');
// Root-owned, hands down only cpu and pids; its child "sub" is delegated to the user.
const LIMITED = join(CGROUP_ROOT, 'pawl-vm-deleg-limited');
const RUN_DIR = '/var/lib/pawl/vm-deleg-runs';

/** What systemd does for Delegate=yes. */
function delegate(dir) {
  mkdirSync(dir, { recursive: true });
  for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads']) chownSync(join(dir, f), UID, UID);
}

/** rmdir a cgroup tree bottom-up (its processes are gone by then). */
function removeCgroupTree(dir) {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(join(dir, e.name));
  for (let i = 0; ; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      if (e.code !== 'EBUSY' || i > 100) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

let out;

before(async () => {
  await requireV2();
  // The rootfs is root's to build; the user only reads it.
  await pawl.ensureRootfs(pawl.hostConfig());
  for (const d of [DELEGATED, OTHER, LIMITED]) removeCgroupTree(d);
  delegate(DELEGATED);
  delegate(OTHER);
  mkdirSync(LIMITED);
  writeFileSync(join(LIMITED, 'cgroup.subtree_control'), '+cpu +pids');
  delegate(join(LIMITED, 'sub'));
  rmSync(RUN_DIR, { recursive: true, force: true });
  mkdirSync(RUN_DIR, { mode: 0o700 });
  chownSync(RUN_DIR, UID, UID);

  // Start the supervisor in the delegated cgroup (as systemd starts the service), then drop to the user.
  const script = `echo $$ > ${DELEGATED}/cgroup.procs && exec setpriv --reuid=${UID} --regid=${UID} --clear-groups -- "$@"`;
  const child = spawn('/bin/sh', ['-c', script, 'sh', process.execPath, join(REPO, 'test', 'vm', 'delegated-supervisor.mjs'), DELEGATED, RUN_DIR], {
    cwd: REPO,
    env: { PATH: process.env.PATH, HOME: '/tmp', LANG: 'C.UTF-8' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b) => (stdout += b));
  child.stderr.on('data', (b) => (stderr += b));
  const code = await new Promise((r) => child.on('close', r));
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `the delegated supervisor exited ${code} without a result:\n${stdout}\n${stderr}`);
  out = JSON.parse(line.slice('RESULT '.length));
});

after(() => {
  for (const d of [DELEGATED, OTHER, LIMITED]) removeCgroupTree(d);
  rmSync(RUN_DIR, { recursive: true, force: true });
});

describe('cgroup v2 without root, in a delegated subtree', () => {
  it('runs as the unprivileged user and puts its runs beside itself in the delegated subtree', (t) => {
    t.diagnostic(`uid ${out.uid}, own cgroup ${out.ownCgroup}, cgroupParent ${out.cgroupParent}`);
    assert.equal(out.uid, UID);
    assert.equal(out.euid, UID);
    assert.equal(out.ownCgroup, '0::/pawl-vm-deleg/supervisor');
    // Found by itself: <own cgroup>/../pawl.
    assert.equal(out.cgroupParent, 'pawl-vm-deleg/pawl');
    assert.equal(out.add.status, 'succeeded', JSON.stringify(out.add));
    assert.deepEqual(out.add.output, { sum: 42 });
    assert.equal(out.add.cgroup, 'v2');
  });

  it('the sandbox is as locked down as under root: uid 1000 inside, no capabilities, read-only root', (t) => {
    const o = out.probe.output;
    t.diagnostic(`uid ${o?.uid} capEff ${o?.capEff} capBnd ${o?.capBnd} writeEtc ${JSON.stringify(o?.writeEtc)}`);
    assert.equal(out.probe.status, 'succeeded', JSON.stringify(out.probe));
    assert.equal(o.uid, 1000);
    assert.equal(o.capEff, '0000000000000000');
    assert.equal(o.capBnd, '0000000000000000');
    assert.deepEqual(o.writeEtc, { ok: false, code: 'EROFS' });
    assert.equal(o.shadow.ok, false);
  });

  it('every process of a running sandbox is in its run group, running as the user (no host id to drop to)', (t) => {
    const { group, processes, result, others } = out.running;
    t.diagnostic(`${group}: ${processes.map((p) => `${p.pid}:${p.cgroup}:uid ${p.uid}`).join(' ')}; the supervisor's own: ${others.join(', ') || 'none'}`);
    assert.match(group, /^\/pawl-vm-deleg\/pawl\/run-/);
    assert.ok(processes.length >= 3);
    for (const p of processes) {
      assert.equal(p.cgroup, group);
      assert.equal(p.uid, UID);
    }
    assert.equal(result.stderr.includes('cannot enter cgroup'), false);
    assert.equal(result.error?.kind, 'Cancelled');
  });

  it('memory.max: a memory bomb is OOM-killed as ResourceExhausted/memory', (t) => {
    const r = out.membomb;
    t.diagnostic(`${r.error?.kind}/${r.error?.resource}: ${r.error?.message}; peak ${r.peak_memory_bytes}`);
    assert.equal(r.error?.kind, 'ResourceExhausted');
    assert.equal(r.error?.resource, 'memory');
    assert.match(r.error.message, /OOM killer/);
    assert.ok(r.peak_memory_bytes > 56 * MiB && r.peak_memory_bytes <= 64 * MiB, `peak ${r.peak_memory_bytes}`);
  });

  it('pids.max: a shell fork bomb ends as ResourceExhausted/pids', (t) => {
    const r = out.forkbomb;
    t.diagnostic(`${r.error?.kind}/${r.error?.resource}; peak pids ${r.peak_pids}, wall ${r.wall_ms} ms`);
    assert.equal(r.error?.kind, 'ResourceExhausted');
    assert.equal(r.error?.resource, 'pids');
    assert.ok(r.peak_pids <= 60);
  });

  it('cpu.max: a spinner gets its 25% share (over a steady window after start-up)', (t) => {
    const r = out.share;
    assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    const { share, cpuMs, wallMs } = r.output;
    t.diagnostic(`share ${share.toFixed(3)} (${cpuMs} ms over a ${wallMs} ms window)`);
    assert.ok(share > 0.18 && share < 0.32, `share ${share}`);
  });

  it('leaves no run group and no scratch dir behind', () => {
    assert.deepEqual(out.leftovers, { cgroups: [], scratch: [] });
  });
});

describe('cgroup v2 without root: fails closed', () => {
  it('refuses a parent outside the delegated subtree, naming the missing write permission', (t) => {
    const r = out.refusals.notDelegated;
    t.diagnostic(r.message);
    assert.equal(r.kind, 'HostUnsupported');
    assert.match(r.message, /cannot create cgroup \/sys\/fs\/cgroup\/pawl-vm-notmine: uid 1500 has no write access to \/sys\/fs\/cgroup/);
    assert.match(r.message, /Delegate=yes/);
  });

  it('refuses a subtree whose controllers were not delegated, naming them and the file it may not write', (t) => {
    const r = out.refusals.controllerNotDelegated;
    t.diagnostic(r.message);
    assert.equal(r.kind, 'HostUnsupported');
    assert.match(r.message, /memory.*pawl-vm-deleg-limited\/cgroup\.subtree_control/);
    assert.match(r.message, /uid 1500 may not write it/);
  });

  it('refuses a delegated subtree the supervisor cannot move sandboxes into (common ancestor\'s cgroup.procs)', (t) => {
    const r = out.refusals.supervisorOutside;
    t.diagnostic(r.message);
    assert.equal(r.kind, 'HostUnsupported');
    assert.match(r.message, /needs write access to \/sys\/fs\/cgroup\/cgroup\.procs/);
  });
});
