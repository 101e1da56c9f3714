// A path from the policy as an AppArmor path rule's subject. AppArmor reads globs (* ? [ ] { } ^),
// variables (@{...}) and, unquoted, comments (#) and whitespace in a path: "/data/*" would allow
// every file under /data. Each such character is escaped and the path double-quoted, so it
// names exactly itself. Control characters have no escape the parser reads, and a backslash
// cannot be written: apparmor_parser 3.0.8 reads `"a\\"` followed by another quoted rule as one
// string running into the next line. Both are refused.
import { PawlError } from '../../errors.js';

/** `glob` (e.g. "/**") is appended as a glob, unescaped. */
export function quotePath(path: string, glob = ''): string {
  // Control characters on purpose: a newline or NUL in a path would end or split the rule.
  if (/[\x00-\x1f\x7f\\]/.test(path)) throw new PawlError('InvalidPolicy', `path ${JSON.stringify(path)} holds a control character or a backslash: an AppArmor rule cannot name it`);
  return `"${path.replace(/["*?[\]{}^@#]/g, (c) => `\\${c}`)}${glob}"`;
}
