// security.runtime_config -> the settings of the parts that run tasks (the pool, the service's
// cleanup timer, the audit log), for the service and the CLI to hand on.
import type { PoolConfigInput } from '../pool/config.js';
import type { SecurityConfig } from './effective.js';

export interface RuntimeSettings {
  /** The warm pool's settings (max_concurrent_containers and pool.*); unset fields keep the pool's defaults. */
  pool: PoolConfigInput;
  /** How often to collect what dead runs left (cleanup_interval), in ms. */
  cleanupIntervalMs?: number;
  /** The audit log file (audit_log). */
  auditLog?: string;
}

export function runtimeSettings(config: SecurityConfig): RuntimeSettings {
  const rc = config.security.runtime_config;
  const pool: PoolConfigInput = {};
  if (rc.max_concurrent_containers !== undefined) pool.maxConcurrent = rc.max_concurrent_containers;
  if (rc.pool?.size !== undefined) pool.size = rc.pool.size;
  if (rc.pool?.idle_timeout !== undefined) pool.idleMs = rc.pool.idle_timeout;
  if (rc.pool?.max_queue !== undefined) pool.maxQueue = rc.pool.max_queue;
  return {
    pool,
    ...(rc.cleanup_interval !== undefined ? { cleanupIntervalMs: rc.cleanup_interval } : {}),
    ...(rc.audit_log ? { auditLog: rc.audit_log } : {}),
  };
}
