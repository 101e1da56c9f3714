// The service's Prometheus metrics (prom-client), on a registry of its own so that two services
// in one process (tests) never share counters. Names follow Prometheus conventions: seconds and
// bytes, _total for counters. scripts/prometheus/pawl-alerts.yml alerts on them.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PoolStats } from '../pool/index.js';
import type { RunResult } from '../supervisor/result.js';

export interface Metrics {
  readonly registry: Registry;
  /** A run that ended with a result (any status). */
  result(result: RunResult): void;
  /** A run pawl could not start or run at all (PawlError), by its kind. */
  notRun(kind: string): void;
  /** Leftovers the periodic gc could not remove, or a run's own cleanup error. */
  cleanupFailures(n: number): void;
  text(): Promise<string>;
}

/** Kinds of error that mean a sandbox did not come up (the start-up failure alert). */
const STARTUP_KINDS = new Set(['RuntimeError', 'HostUnsupported']);

export function createMetrics(pool: () => PoolStats, running: () => number): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'pawl_process_' });
  const runs = new Counter({ name: 'pawl_runs_total', help: 'Runs ended, by result: "succeeded" or the error kind', labelNames: ['result'], registers: [registry] });
  const violations = new Counter({ name: 'pawl_security_violations_total', help: 'Security violations recorded in run results, by kind', labelNames: ['kind'], registers: [registry] });
  const exhausted = new Counter({ name: 'pawl_resource_exhausted_total', help: 'Runs stopped by a resource limit, by resource', labelNames: ['resource'], registers: [registry] });
  const startupFailures = new Counter({ name: 'pawl_startup_failures_total', help: 'Runs whose sandbox could not be started (runtime error or host unsupported)', registers: [registry] });
  const cleanup = new Counter({ name: 'pawl_cleanup_failures_total', help: 'Cgroups, scratch dirs or containers that could not be removed', registers: [registry] });
  const startup = new Histogram({
    name: 'pawl_startup_seconds', help: 'Sandbox start-up time (timings_ms.start) of runs that reached a sandbox',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry],
  });
  const duration = new Histogram({
    name: 'pawl_run_duration_seconds', help: 'Wall time of runs inside their sandbox (usage.wall_ms)',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600, 3600], registers: [registry],
  });
  const memory = new Histogram({
    name: 'pawl_peak_memory_bytes', help: 'Peak memory of runs (usage.peak_memory_bytes)',
    buckets: [4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048].map((m) => m * 1024 * 1024), registers: [registry],
  });
  // Read from the pool when scraped, so they can never drift from it.
  const gauge = (name: string, help: string, read: () => number) => new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  gauge('pawl_pool_sandboxes', 'Sandboxes that exist now (starting, idle, running or being destroyed)', () => pool().live);
  gauge('pawl_pool_idle_sandboxes', 'Warm sandboxes waiting for a task', () => pool().idle);
  gauge('pawl_queue_length', 'Tasks waiting for a sandbox slot (the concurrency cap)', () => pool().queued);
  gauge('pawl_runs_in_progress', 'Runs accepted and not yet ended', running);
  const hitsAndMisses = { dispatched: 0 };
  const counterFrom = (name: string, help: string, read: () => number) => new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read()); } });
  counterFrom('pawl_pool_hits_total', 'Tasks that found a warm sandbox waiting', () => pool().warmHits);
  counterFrom('pawl_pool_misses_total', 'Tasks that had to wait for a sandbox to start', () => Math.max(0, hitsAndMisses.dispatched - pool().warmHits));

  return {
    registry,
    result(r) {
      runs.inc({ result: r.status === 'succeeded' ? 'succeeded' : (r.error?.kind ?? 'unknown') });
      for (const v of r.violations) violations.inc({ kind: v.kind });
      if (r.error?.kind === 'SecurityViolation' && !r.violations.length) violations.inc({ kind: 'syscall' });
      if (r.error?.kind === 'ResourceExhausted') exhausted.inc({ resource: r.error.resource ?? 'unknown' });
      if (r.cleanup_error) cleanup.inc();
      if (r.error?.kind === 'InvalidInput') return; // refused before any sandbox: no timings to observe
      hitsAndMisses.dispatched++;
      startup.observe(r.timings_ms.start / 1000);
      duration.observe(r.usage.wall_ms / 1000);
      memory.observe(r.usage.peak_memory_bytes);
    },
    notRun(kind) {
      runs.inc({ result: kind });
      if (STARTUP_KINDS.has(kind)) startupFailures.inc();
    },
    cleanupFailures(n) {
      if (n > 0) cleanup.inc(n);
    },
    text: () => registry.metrics(),
  };
}
