export { Pool, policyKey, type PoolStats } from './pool.js';
export { PoolConfig, type PoolConfigInput } from './config.js';
