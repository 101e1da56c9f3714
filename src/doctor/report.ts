// pawl doctor's report: one line per thing pawl relies on, what this host gives, and the fix.
import { z } from 'zod';

export const CheckStatus = z.enum(['ok', 'degraded', 'missing']);

export const Check = z.strictObject({
  /** What is checked, e.g. "cgroup", "landlock". */
  name: z.string(),
  status: CheckStatus,
  /** What this host has, in one line. */
  detail: z.string(),
  /** How to get the missing part, when status is not ok. */
  fix: z.string().nullable(),
  /** The default policy needs it: a line that is not ok makes `enforceable` false. */
  neededByDefault: z.boolean(),
});
export type Check = z.infer<typeof Check>;

export const DoctorReport = z.strictObject({
  checks: z.array(Check),
  /** Every check the default policy needs is ok. */
  enforceable: z.boolean(),
});
export type DoctorReport = z.infer<typeof DoctorReport>;

export const check = (name: string, status: Check['status'], detail: string, fix: string | null, neededByDefault: boolean): Check => ({
  name, status, detail, fix: status === 'ok' ? null : fix, neededByDefault,
});
