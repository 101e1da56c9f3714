// The operator's security.yaml (the Ratchet plan's shape) as a library.
export { loadSecurityConfig, parseSecurityConfig } from './load.js';
export { effectivePolicy, SecurityConfigError, type SecurityConfig, type EffectivePolicy, type RunMode, type ConfigProblem } from './effective.js';
export { SecurityConfigFile, ExecutionMode } from './schema.js';
export { runtimeSettings, type RuntimeSettings } from './runtime.js';
