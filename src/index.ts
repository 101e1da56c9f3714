// pawl as a library: everything the CLI does is a call here.
export { runTask, execProgram, taskPolicy, type RunTaskOptions, type ExecOptions } from './supervisor/run.js';
export { Sandbox, type SandboxOptions } from './supervisor/sandbox.js';
export { explain, type Explanation } from './supervisor/explain.js';
export { collectGarbage, type GcReport } from './supervisor/gc.js';
export { RunResult, ErrorKind, Resource, Usage } from './supervisor/result.js';
export { Policy, ResourceLimits, FilesystemPolicy, NetworkPolicy, SecurityPolicy, TrustLevel, type PolicyInput } from './config/policy.js';
export { resolvePolicy, loadPolicyFile } from './config/resolve.js';
export { TRUST_PRESETS } from './config/trust.js';
export { hostConfig, HostConfig } from './config/host.js';
export { parseSize, parseDuration } from './config/units.js';
export { loadTask, TaskLimits, type LoadedTask } from './task/load.js';
export { runTaskTests } from './task/tests.js';
export { ensureRootfs, rootfsInfo } from './rootfs/index.js';
export { PawlError, type PawlErrorKind } from './errors.js';
export { Pool, PoolConfig, policyKey, type PoolStats, type PoolConfigInput } from './pool/index.js';
export { runDoctor, formatDoctor, DoctorReport, Check as DoctorCheck } from './doctor/index.js';
