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
 * Of the processes a leak check found, those that stay. A killed process leaves its cgroup
 * (cgroup.procs empties, the group can be removed) a moment before it becomes a zombie; under
 * emulation, with both vCPUs busy, it may wait for a CPU in between. One that is exiting is given
 * 5 s to finish; each left is printed with what tells whose it is.
 * @param {number[]} pids
 * @returns {Promise<number[]>}
 */
export async function stillThere(pids) {
  let left = pids.filter(live);
  const exiting = left.filter((p) => flags(p) & PF_EXITING);
  const t0 = Date.now();
  for (const end = t0 + 5000; left.some((p) => flags(p) & PF_EXITING) && Date.now() < end; left = left.filter(live)) {
    await new Promise((r) => setTimeout(r, 20));
  }
  if (exiting.length) console.warn(`leak check: process ${exiting.join(', ')} was exiting; waited ${Date.now() - t0} ms`);
  for (const pid of left) {
    const status = (read(pid, 'status') ?? '').split('\n').filter((l) => /^(Name|State|PPid|Uid|NSpid):/.test(l)).join(', ').replace(/\t/g, ' ');
    const cmdline = (read(pid, 'cmdline') ?? '').replace(/\0/g, ' ').slice(0, 160);
    console.warn(`leftover process ${pid}: ${status}; flags 0x${flags(pid).toString(16)}; ${cmdline}; cgroup ${(read(pid, 'cgroup') ?? '').trim().replace(/\n/g, ' | ')}`);
  }
  return left;
}
