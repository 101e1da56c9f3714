// Not a test file: the supervisor that test/vm/delegation.test.mjs starts as an unprivileged
// user (uid 1500) in a cgroup v2 subtree delegated to it, as systemd's Delegate=yes does for a
// service. It uses the library the way such a service would and prints one line
// "RESULT <json>" with what it saw; the test asserts on it.
//
// argv: <delegated cgroup dir> <runDir owned by the user>
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { BUSYBOX_BIND, cgroupOf, descendants, example, fixture, pawl } from './lib.mjs';

const [delegated, runDir] = process.argv.slice(2);
const { hostConfig, runTask, execProgram, loadTask, Sandbox, resolvePolicy, PawlError } = pawl;
const out = {};

// A Delegate=yes service starts inside its delegated cgroup. The kernel lets a cgroup with
// processes hand no controllers to its children, so the service first moves itself into a leaf.
mkdirSync(join(delegated, 'supervisor'), { recursive: true });
writeFileSync(join(delegated, 'supervisor', 'cgroup.procs'), String(process.pid));

const host = hostConfig({ runDir });
out.uid = process.getuid();
out.euid = process.geteuid();
out.ownCgroup = readFileSync('/proc/self/cgroup', 'utf8').trim();
out.cgroupParent = host.cgroupParent;

const summary = (r) => ({
  status: r.status, error: r.error ?? null, cgroup: r.cgroup, output: r.output ?? null, peak_memory_bytes: r.usage.peak_memory_bytes,
  peak_pids: r.usage.peak_pids, cpu_ms: r.usage.cpu_ms, wall_ms: r.usage.wall_ms, stderr: r.stderr.slice(-500),
});
// The sample's own 5 s timeout is the caller's to raise: emulated, beside the suite's other lane.
const fast = { resources: { cpuPercent: 100, wallTime: '60s' } };

// The schema thread's 5 s bound is for hostile schemas on real hardware; under TCG, with the
// suite's other lane busy on both vCPUs, its start-up alone can take that long. This file proves
// delegation, not schema bounds (test/unit/schema-bounds.test.ts does, on the host).
const slowSchemas = { limits: { validation: { timeMs: 120_000 } } };
out.add = summary(await runTask(await loadTask(example('add'), slowSchemas), { input: { num1: 2, num2: 40 }, host, policy: fast }));
out.probe = summary(await runTask(await loadTask(fixture('probe'), slowSchemas), { host, policy: fast }));
out.membomb = summary(await runTask(await loadTask(fixture('membomb'), slowSchemas), { trustLevel: 'untrusted', host, policy: { resources: { cpuPercent: 100, wallTime: '60s' } } }));
out.forkbomb = summary(await execProgram(['/bin/busybox', 'sh', '-c', 'b() { b | b & }; b; sleep 30'], {
  trustLevel: 'untrusted', host, policy: { resources: { cpuPercent: 100, wallTime: '60s' }, filesystem: { binds: [BUSYBOX_BIND] } },
}));
out.share = summary(await runTask(await loadTask(fixture('share'), slowSchemas), { host, input: { windowMs: 2000 }, policy: { resources: { wallTime: '60s', cpuPercent: 25 } } }));

// The outside view of a running sandbox: every process in the run's group, running as this user.
{
  const seen = new PassThrough();
  let text = '';
  seen.on('data', (b) => (text += b));
  const sb = await Sandbox.start({
    policy: resolvePolicy({ overrides: { ...fast, filesystem: { binds: [BUSYBOX_BIND] } } }), host, mode: 'program', forwardStdout: seen,
    command: ['/bin/busybox', 'sh', '-c', 'cat /proc/self/cgroup; /bin/busybox sleep 60 & echo started; wait'],
  });
  const deadline = Date.now() + 30_000;
  while (!text.includes('started') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  // The sandbox's processes: the one the supervisor spawned (the shim, now bwrap) and all below
  // it. (The supervisor's own helpers, such as du for the workspace's size, are not the sandbox's.)
  const supervisorGroup = cgroupOf(process.pid);
  out.running = {
    group: `/${host.cgroupParent}/run-${sb.id}`,
    processes: [sb.pid, ...descendants(sb.pid)].map((pid) => ({
      pid, cgroup: cgroupOf(pid), uid: Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]),
    })),
    // Anything else in the supervisor's process tree, for the diagnostic only.
    others: descendants(process.pid).filter((pid) => pid !== sb.pid && cgroupOf(pid) === supervisorGroup)
      .map((pid) => { try { return `${pid}:${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()}`; } catch { return `${pid}:gone`; } }),
  };
  await sb.kill('cancelled');
  out.running.result = summary(await sb.result());
}

// Fail closed: what this user may not use is refused with the reason, before anything runs.
const refusal = async (cgroupParent) => {
  try {
    const r = await execProgram(['/bin/busybox', 'true'], { host: hostConfig({ runDir, cgroupParent }), policy: { filesystem: { binds: [BUSYBOX_BIND] } } });
    return { ran: r.status };
  } catch (e) {
    return { kind: e instanceof PawlError ? e.kind : e.name, message: e.message };
  }
};
out.refusals = {
  notDelegated: await refusal('pawl-vm-notmine'),
  controllerNotDelegated: await refusal('pawl-vm-deleg-limited/sub/pawl'),
  supervisorOutside: await refusal('pawl-vm-deleg-other/pawl'),
};

// runTask's results come before their teardowns: what is left is judged once those have ended.
await pawl.teardownsSettled();
const parentDir = join('/sys/fs/cgroup', host.cgroupParent);
out.leftovers = {
  cgroups: readdirSync(parentDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name),
  scratch: readdirSync(runDir),
};
console.log(`RESULT ${JSON.stringify(out)}`);
