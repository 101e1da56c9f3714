// Percentiles and a small timing loop for the bench.
export const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
export const r1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);

export function summary(ms) {
  return { runs: ms.length, median_ms: r1(pct(ms, 50)), p95_ms: r1(pct(ms, 95)), p99_ms: r1(pct(ms, 99)) };
}

/** Time `fn` `runs` times after one untimed warm-up; `between` (untimed) runs after each. */
export async function timeRuns(runs, fn, between = async () => {}) {
  await fn();
  await between();
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
    await between();
  }
  return ms;
}

/** Tasks per second when `total` tasks run with at most `concurrency` at once; timed until `drain` (work left after the results) has ended. */
export async function throughput(total, concurrency, fn, drain = async () => {}) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      next++;
      await fn();
    }
  }));
  await drain();
  return r1(total / ((performance.now() - t0) / 1000));
}
