// The audit log (pino, JSON lines): one per run, one per security violation.
export { auditRun, openAuditLog, setAuditLog, policyHash, type AuditLog, type AuditContext } from './log.js';
