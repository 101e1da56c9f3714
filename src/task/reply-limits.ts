// What a harness reply may hold (reply.ts checks it; the harness cuts what the task gave it to
// fit, so a long error message or many blocked calls stay the task's own verdict, not
// InvalidOutput). A const enum: inlined by tsc, so the harness imports nothing at run time.
export const enum ReplyLimit {
  Violations = 1000,
  Detail = 4096,
  Name = 1000,
  Message = 65536,
  Stack = 65536,
  Code = 100,
  Path = 8192,
  Syscall = 100,
}
