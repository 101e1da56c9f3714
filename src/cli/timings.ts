// PAWL_TIMINGS=1 (or --timings before the command): print each phase of a CLI invocation to
// stderr, so start-up costs are measured rather than guessed.
const t0 = performance.now();
const marks: [string, number][] = [];
export const timingsOn = process.env.PAWL_TIMINGS === '1' || process.argv[2] === '--timings';

export function mark(phase: string): void {
  if (timingsOn) marks.push([phase, performance.now()]);
}

/** One line: process start to main, then each phase's duration in ms. */
export function timingsLine(): string {
  let prev = t0;
  const parts = [`boot=${t0.toFixed(1)}`];
  for (const [name, t] of marks) {
    parts.push(`${name}=${(t - prev).toFixed(1)}`);
    prev = t;
  }
  parts.push(`total=${performance.now().toFixed(1)}`);
  // CPU of this process, every thread (the schema thread too): wall time on a loaded host says little.
  const cpu = process.cpuUsage();
  parts.push(`cpu=${((cpu.user + cpu.system) / 1000).toFixed(1)}`);
  // How the launcher compiled the CLI (code-cache.ts; its symbol, so that this file loads no more).
  const codeCache = (globalThis as Record<symbol, unknown>)[Symbol.for('pawl.codeCache')];
  if (codeCache) parts.push(`code-cache=${String(codeCache)}`);
  return `pawl timings (ms): ${parts.join(' ')}`;
}
