// Issue 10's attacks that must not run on a shared host, as the attacks, on cgroup v2 in the VM:
// 7 (a run asleep in uninterruptible I/O), 8 (a directory swapped for a link while its run dir is
// removed) and 11 (seccomp kills of a child process, many in a row).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DIST, NOTHING_LEFT, REPO, leftovers, pawl, requireV2, testHost, withBusybox } from './lib.mjs';

const host = testHost('attacks');
const { execProgram, runTask } = pawl;
const { listLeftovers } = await import(join(DIST, 'supervisor', 'leftovers.js'));
const { removeTree } = await import(join(DIST, 'supervisor', 'scratch.js'));
const { readSeccompRecords } = await import(join(DIST, 'seccomp', 'classify.js'));
const { auditRecordsLost } = await import(join(DIST, 'seccomp', 'audit-netlink.js'));
const WORK = '/var/lib/pawl/vm-attacks';

before(async () => {
  await requireV2();
  mkdirSync(WORK, { recursive: true, mode: 0o755 });
});

after(async () => {
  rmSync(WORK, { recursive: true, force: true });
  assert.deepEqual(await leftovers(host), NOTHING_LEFT);
});

describe('10.7: uninterruptible I/O cannot replace the verdict', () => {
  it('a task asleep in throttled O_DIRECT writes past its timeout: Timeout, and the kill lifts the throttle so the writers die with the run', async (t) => {
    // Two 16 MiB O_DIRECT writes to /workspace (its own loop device, under io.max) at the 1 MB/s
    // floor: the writers would sleep in D state for ~32 s in all, past every bounded kill and
    // cleanup wait of the supervisor. The kill writes io.max back to max once every process has
    // been sent SIGKILL (cgroup/files.ts releaseWrites): the queued writes go at the disk's speed
    // and the writers die at once, so the group, the mount and the scratch dir go with the run.
    // (Before, the result came with cleanup_error naming the busy group, and gc took it ~30 s on.)
    const dd = (f) => `busybox dd if=/dev/zero of=/workspace/${f} bs=16M count=1 oflag=direct`;
    const argv = ['/bin/busybox', 'sh', '-c', `${dd('a')} & ${dd('b')} & wait`];
    const wallMs = 5000;
    const r = await execProgram(argv, { host, policy: withBusybox({ resources: { cpuPercent: 100, memory: '512MB', wallTime: `${wallMs / 1000}s`, diskWriteBps: '1MB', diskSpace: '256MB' } }) });
    const afterTimeout = r.timings_ms.run - wallMs + r.timings_ms.cleanup;
    t.diagnostic(`${r.status} ${r.error?.kind}: ${r.error?.message}; cleanup_error: ${r.cleanup_error}; result ${afterTimeout} ms after the timeout`);
    assert.equal(r.status, 'failed');
    assert.equal(r.error?.kind, 'Timeout');
    assert.equal(r.cleanup_error, undefined);
    assert.ok(afterTimeout < 20_000, `the result came ${afterTimeout} ms after the timeout`);
    assert.equal(existsSync(join('/sys/fs/cgroup', host.cgroupParent, `run-${r.id}`)), false, 'the group is gone');
    assert.equal(existsSync(join(host.runDir, r.id)), false, 'the scratch dir is gone');
    assert.deepEqual((await listLeftovers(host)).map((l) => l.id), []);
  });
});

describe('10.8: removal never follows a link swapped in during it', () => {
  const canaryAt = (name) => {
    const canary = join(WORK, name);
    mkdirSync(canary, { recursive: true });
    writeFileSync(join(canary, 'precious'), 'keep me');
    return canary;
  };

  it('a directory swapped for a link to an outside dir right after it was listed', async () => {
    const canary = canaryAt('canary-1');
    const runs = join(WORK, 'runs-1');
    const run = join(runs, 'r1');
    mkdirSync(join(run, 'workspace', 'a', 'sub'), { recursive: true });
    writeFileSync(join(run, 'workspace', 'a', 'sub', 'f'), 'x');
    let swapped = false;
    await removeTree(run, runs, (_fd, names) => {
      if (swapped || !names.includes('sub')) return;
      renameSync(join(run, 'workspace', 'a', 'sub'), join(run, 'moved'));
      symlinkSync(canary, join(run, 'workspace', 'a', 'sub'));
      swapped = true;
    });
    assert.equal(swapped, true);
    assert.equal(existsSync(run), false);
    assert.deepEqual(readdirSync(canary), ['precious']);
  });

  it('another process swapping directories for links in a loop, 20 removals', async (t) => {
    const canary = canaryAt('canary-2');
    const runs = join(WORK, 'runs-2');
    // The racer: for every dir d<i> it sees, moves it away and puts a link to the canary there.
    const racer = spawn(process.execPath, ['-e', `
      const fs = require('fs'), path = require('path');
      const [runs, canary] = process.argv.slice(1);
      for (;;) {
        for (const r of (() => { try { return fs.readdirSync(runs); } catch { return []; } })()) {
          for (let i = 0; i < 20; i++) {
            const d = path.join(runs, r, 'workspace', 'd' + i);
            try { fs.renameSync(d, d + '.gone'); fs.symlinkSync(canary, d); process.stdout.write('.'); } catch {}
          }
        }
      }`, runs, canary], { stdio: ['ignore', 'pipe', 'ignore'] });
    let swaps = 0;
    const failed = [];
    racer.stdout.on('data', (b) => (swaps += b.length));
    try {
      for (let n = 0; n < 20; n++) {
        // Built aside, then moved into the racer's view in one rename.
        const staging = join(WORK, 'staging');
        for (let i = 0; i < 20; i++) {
          mkdirSync(join(staging, 'workspace', `d${i}`, 'x'), { recursive: true });
          writeFileSync(join(staging, 'workspace', `d${i}`, 'x', 'f'), 'x');
        }
        const run = join(runs, `r${n}`);
        mkdirSync(runs, { recursive: true });
        renameSync(staging, run);
        // The racer may keep adding entries faster than they go ("Directory not empty"): such a
        // removal fails (in a run: cleanup_error and the leftover list), it never follows a link.
        await removeTree(run, runs).catch((e) => failed.push(e.message));
        assert.deepEqual(readdirSync(canary), ['precious'], `after removal ${n}`);
      }
    } finally {
      racer.kill('SIGKILL');
    }
    await new Promise((res) => racer.once('close', res));
    for (const left of readdirSync(runs)) await removeTree(join(runs, left), runs);
    assert.deepEqual(readdirSync(runs), []);
    t.diagnostic(`${failed.length} of 20 removals failed while the racer ran: ${failed[0] ?? ''}`);
    t.diagnostic(`${swaps} directories swapped for links during removals; canary: ${readdirSync(canary)}`);
    assert.ok(swaps > 0, 'the racer swapped nothing: the test proved nothing');
    assert.equal(readFileSync(join(canary, 'precious'), 'utf8'), 'keep me');
  });
});

describe('10.11: seccomp kills of a child process at untrusted', () => {
  let dir;
  before(() => {
    dir = mkdtempSync(join(WORK, 'childkill-'));
    chmodSync(dir, 0o755); // bwrap runs as the run's unprivileged host id
    mkdirSync(join(dir, 'probe'));
    execFileSync('gcc', ['-static', '-O2', '-o', join(dir, 'probe', 'prober'), join(REPO, 'test', 'security', 'prober.c')]);
    chmodSync(join(dir, 'probe'), 0o755);
    mkdirSync(join(dir, 'task'));
    // Each run's children are killed 20 times: more than the kernel prints per 5 s (10,
    // machine-wide), so the kernel log alone loses at least half of every run's records. The task
    // returns right after the last kill: kauditd sends the records later (under emulation, often
    // after the run has ended), so the supervisor must wait for them to be all counted.
    writeFileSync(join(dir, 'task', 'main.js'), `async function main() {
      const signals = [];
      for (let i = 0; i < 20; i++) signals.push(require('child_process').spawnSync('/probe/prober', ['--direct', 'ptrace']).signal);
      return { signals: [...new Set(signals)] };
    }`);
  });

  it('20 seccomp kills of child processes in one run, 3 runs in a row: every kill is a violation, each run a SecurityViolation', async (t) => {
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const r = await runTask(join(dir, 'task'), {
        trustLevel: 'untrusted', host,
        policy: { resources: { cpuPercent: 100, wallTime: '120s' }, filesystem: { binds: [{ src: join(dir, 'probe'), dst: '/probe' }] } },
      });
      const kills = r.violations.filter((v) => v.kind === 'syscall' && v.source === 'supervisor');
      t.diagnostic(`run ${i}: ${r.status} ${r.error?.kind} ${r.error?.syscall}; ${kills.length} kills reported; children ${JSON.stringify(r.output)}`);
      if (kills.length !== 20) {
        // What the supervisor's reader holds from this run's time on, and whether the kernel dropped any.
        const seen = readSeccompRecords().filter((x) => x.time >= t0 - 1000);
        t.diagnostic(`records since the run began: ${seen.length} (sessions ${[...new Set(seen.map((x) => x.session))]}, first at +${seen[0] ? seen[0].time - t0 : '-'} ms); dropped by a full socket: ${auditRecordsLost()}`);
      }
      assert.equal(r.error?.kind, 'SecurityViolation');
      assert.equal(r.error?.syscall, 'ptrace');
      assert.equal(kills.length, 20, JSON.stringify(kills));
      assert.ok(kills.every((k) => k.detail === 'ptrace'));
    }
  });
});
