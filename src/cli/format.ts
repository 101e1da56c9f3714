// Human-readable `pawl explain`.
import type { Explanation } from '../supervisor/explain.js';
import { jsonDepth } from '../util/json-depth.js';

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

export function formatExplanation(e: Explanation): string {
  const r = e.policy.resources;
  const lines = [
    `trust level   ${e.policy.trustLevel}`,
    `runtime       ${e.policy.runtime}`,
    `network       ${e.policy.network.mode}`,
    `seccomp       ${e.seccomp.name}${e.seccomp.hash ? ` (${e.seccomp.hash.slice(0, 16)})` : ''}`,
    `apparmor      ${e.apparmor.name ?? 'none'}: ${e.apparmor.note}`,
    `limits        memory=${r.memory} cpu=${r.cpuPercent}% processes=${r.processes} fds=${r.fileDescriptors} wall=${r.wallTime}ms cpu-time=${r.cpuTime}ms`,
    `              disk read=${r.diskReadBps}B/s write=${r.diskWriteBps}B/s space=${r.diskSpace} tmp=${r.tmpSize} stdout=${r.stdoutMax} stderr=${r.stderrMax}`,
    '',
    'network:',
    ...e.network.map((l) => `  ${l}`),
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
    ...e.cgroup.writes.map((w) => `  ${w.path} = ${w.value}${w.atDispatch ? '  (when the task is handed to the harness: node boots without it)' : ''}`),
    '',
    'rlimits:',
    ...Object.entries(e.rlimits).map(([k, v]) => `  ${k} = ${v}`),
    '',
    'mounts:',
    ...e.mounts.map((m) => `  ${m.dst} <- ${m.src} (${m.mode})`),
    `  /proc masked (where this kernel has them): ${e.layout.proc.masked.join(' ')}`,
    `  /proc read-only: ${e.layout.proc.readOnly.join(' ')}`,
    '',
    'blocked paths:',
    ...e.filesystem.blocked.map((l) => `  ${l}`),
    '',
    'landlock:',
    ...e.filesystem.landlock.map((l) => `  ${l}`),
    '',
    'process:',
    `  uid ${e.layout.user.uid} gid ${e.layout.user.gid}, hostname ${e.layout.hostname}, cwd ${e.layout.cwd}`,
    `  argv ${e.layout.argv.map(quote).join(' ')}`,
    `  env ${Object.entries(e.layout.env).map(([k, v]) => quote(`${k}=${v}`)).join(' ')}`,
    '',
    'runtime argv:',
    `  ${e.runtime.map(quote).join(' ')}`,
    '',
    e.policy.runtime === 'bwrap' ? 'spawned (shim -> bwrap; the rlimits above set on the shim):' : 'spawned:',
    `  ${e.spawn.map(quote).join(' ')}`,
  ];
  return lines.join('\n');
}

/** Past this size a result is printed compact: indentation grows with depth, and V8 strings end at ~512 MiB. */
const PRETTY_MAX = 64 * 1024 * 1024;


/**
 * A result as JSON, which never throws: indented when that stays small, compact otherwise. Each
 * compact character gains at most 2*depth+3 when indented, which bounds the pretty size up front
 * (building a 500 MB indented string only to have V8 refuse it takes a minute).
 */
export function formatResult(result: unknown): string {
  let compact: string;
  try {
    compact = JSON.stringify(result);
  } catch (e) {
    return JSON.stringify({ error: { kind: 'InvalidOutput', message: `the result cannot be printed as JSON (${(e as Error).name})` } });
  }
  if (compact.length * (2 * jsonDepth(result) + 3) > PRETTY_MAX) return compact;
  try {
    return JSON.stringify(result, null, 2);
  } catch {
    return compact;
  }
}
