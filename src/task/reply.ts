// The harness's reply, as the supervisor reads it: untrusted bytes. The task runs in the
// harness's process and can write fd 4 itself, so the shape is checked here, and output too deep
// to serialise again is refused, rather than trusted to be what the harness would send.
// These schemas are the protocol's types too (protocol.ts re-exports them as types only, so the
// harness, copied alone into the rootfs, still imports nothing at run time).
import { z } from 'zod';
import { jsonDepth } from '../util/json-depth.js';
import { ReplyLimit } from './reply-limits.js';

const MAX_DEPTH = 100;

/** What a violation is about: the task's own report and the run result share it (supervisor/result.ts). */
export const ViolationKind = z.enum(['network', 'filesystem', 'syscall']);
export const Violation = z.object({ kind: ViolationKind, detail: z.string().max(ReplyLimit.Detail) });
export type Violation = z.infer<typeof Violation>;
const Violations = z.array(Violation).max(ReplyLimit.Violations);
export const SerializedError = z.object({
  name: z.string().max(ReplyLimit.Name),
  message: z.string().max(ReplyLimit.Message),
  stack: z.string().max(ReplyLimit.Stack).optional(),
  code: z.string().max(ReplyLimit.Code).optional(),
  status: z.number().optional(),
  path: z.string().max(ReplyLimit.Path).optional(),
  syscall: z.string().max(ReplyLimit.Syscall).optional(),
});
export type SerializedError = z.infer<typeof SerializedError>;
export const HarnessReply = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), output: z.unknown(), violations: Violations }),
  z.object({ ok: z.literal(false), stage: z.enum(['load', 'run', 'output']), error: SerializedError, violations: Violations }),
]);
export type HarnessReply = z.infer<typeof HarnessReply>;

/** The reply, or a one-line reason why it cannot be used. */
export function parseReply(text: string): { reply: HarnessReply } | { problem: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { problem: 'the harness reply was not valid JSON (did the task write to fd 4?)' };
  }
  return checkReply(doc);
}

/** An already parsed reply (reuse mode's replies come inside a line of their own: src/pool/reuse.ts). */
export function checkReply(doc: unknown): { reply: HarnessReply } | { problem: string } {
  const r = HarnessReply.safeParse(doc);
  if (!r.success) return { problem: `the harness reply was malformed (did the task write to fd 4?): ${r.error.issues[0]?.path.join('.') || 'reply'} ${r.error.issues[0]?.message}` };
  if (r.data.ok && jsonDepth(r.data.output, MAX_DEPTH) > MAX_DEPTH) return { problem: `the task's output nests deeper than ${MAX_DEPTH} levels` };
  return { reply: r.data };
}

