// Shared by the host's leak checks (test/helpers/host.ts) and the VM's (test/vm/lib.mjs): plain
// JavaScript, so node --test can load it without a build.
import { readFileSync } from 'node:fs';

/** PF_EXITING in /proc/PID/stat's flags: the process is in its exit and runs no code of its own again. */
const PF_EXITING = 0x4;

const read = (pid, file) => {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return null;
  }
};
/** /proc/PID/stat's fields from the state on (the name, in parentheses, may hold spaces). */
const statFields = (pid) => read(pid, 'stat')?.replace(/^.*\) /s, '').split(' ') ?? null;
const live = (pid) => {
  const f = statFields(pid);
  return f !== null && f[0] !== 'Z';
};
const flags = (pid) => Number(statFields(pid)?.[6] ?? 0);

/**
 * Of the processes a leak check found, those that stay: a leak is a process that does not go.
 * Found in passing are a killed process that has left its cgroup (cgroup.procs empties, the group
 * can be removed) a moment before it becomes a zombie, and a runtime's process on its way into a
 * group; under emulation, with both vCPUs busy, either may wait for a CPU for a while. Each gets
 * 1 s to go (one that outlives its run's kill by more is a leak, however soon it would end); each
 * left is printed with what tells whose it is, and whether it was exiting (PF_EXITING: it runs no
 * code of its own again).
 * @param {number[]} pids
 * @returns {Promise<number[]>}
 */
export async function stillThere(pids) {
  const first = pids.filter(live);
  let left = first;
  for (const end = Date.now() + 1000; left.length && Date.now() < end; left = left.filter(live)) await new Promise((r) => setTimeout(r, 20));
  const went = first.filter((p) => !left.includes(p));
  if (went.length) console.warn(`leak check: process ${went.join(', ')} went within 1 s of the first look`);
  for (const pid of left) {
    const status = (read(pid, 'status') ?? '').split('\n').filter((l) => /^(Name|State|PPid|Uid|NSpid):/.test(l)).join(', ').replace(/\t/g, ' ');
    const cmdline = (read(pid, 'cmdline') ?? '').replace(/\0/g, ' ').slice(0, 160);
    const exiting = flags(pid) & PF_EXITING ? ' (exiting)' : '';
    console.warn(`leak check: process ${pid}${exiting} stays: ${status}; ${cmdline}; cgroup ${(read(pid, 'cgroup') ?? '').trim().replace(/\n/g, ' | ')}`);
  }
  return left;
}
