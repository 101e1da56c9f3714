// Human-readable `pawl explain`.
import type { Explanation } from '../supervisor/explain.js';

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

export function formatExplanation(e: Explanation): string {
  const r = e.policy.resources;
  const lines = [
    `trust level   ${e.policy.trustLevel}`,
    `runtime       ${e.policy.runtime}`,
    `network       ${e.policy.network.mode}`,
    `seccomp       ${e.seccomp.name}${e.seccomp.hash ? ` (${e.seccomp.hash.slice(0, 16)})` : ''}`,
    `limits        memory=${r.memory} cpu=${r.cpuPercent}% processes=${r.processes} fds=${r.fileDescriptors} wall=${r.wallTime}ms cpu-time=${r.cpuTime}ms`,
    `              disk read=${r.diskReadBps}B/s write=${r.diskWriteBps}B/s space=${r.diskSpace} tmp=${r.tmpSize} stdout=${r.stdoutMax} stderr=${r.stderrMax}`,
    '',
    'seccomp profile:',
    ...e.seccomp.lines.map((l) => `  ${l}`),
    '',
    'storage:',
    `  io limits on ${e.storage.ioDevices.length ? e.storage.ioDevices.join(' ') : 'no device'}`,
    ...e.storage.notNeeded.map((n) => `  not needed: ${n}`),
    ...e.storage.degraded.map((n) => `  degraded: ${n}`),
    '',
    `cgroup ${e.cgroup.version} files:`,
    ...e.cgroup.writes.map((w) => `  ${w.path} = ${w.value}`),
    '',
    'rlimits:',
    ...Object.entries(e.rlimits).map(([k, v]) => `  ${k} = ${v}`),
    '',
    'mounts:',
    ...e.mounts.map((m) => `  ${m.dst} <- ${m.src} (${m.mode})`),
    '',
    'runtime argv:',
    `  ${e.runtime.map(quote).join(' ')}`,
    '',
    e.policy.runtime === 'bwrap' ? 'spawned (shim -> prlimit -> setpriv -> bwrap):' : 'spawned:',
    `  ${e.spawn.map(quote).join(' ')}`,
  ];
  return lines.join('\n');
}
