// A generated profile's name: "pawl-" and the first 16 hex digits of the sha256 of its text, with
// the name itself left as the template's placeholder (a name cannot hash itself). Same rules, same
// name: a host that loads profiles loads each distinct one once, and a changed rule is a new name.
import { createHash } from 'node:crypto';

export const NAME_PLACEHOLDER = '{{NAME}}';

export function profileName(textWithPlaceholder: string): string {
  return `pawl-${createHash('sha256').update(textWithPlaceholder).digest('hex').slice(0, 16)}`;
}
