export { Pool, policyKey, type PoolStats, type PoolEvents } from './pool.js';
export { PoolConfig, type PoolConfigInput } from './config.js';
