// The one table from signal numbers to names: node's own (os.constants.signals), so every signal
// the kernel can deliver has its usual name ("SIGUSR2", not "SIG12"). Where the kernel has two
// names for one number (SIGABRT/SIGIOT, SIGIO/SIGPOLL) the first, conventional one is used.
import { constants } from 'node:os';

const NAMES = new Map<number, NodeJS.Signals>();
for (const [name, n] of Object.entries(constants.signals) as [NodeJS.Signals, number][]) {
  if (!NAMES.has(n)) NAMES.set(n, name);
}

/** "SIGUSR2" for 12; a real-time or unknown signal stays a number ("SIG40"). */
export function signalName(n: number): NodeJS.Signals {
  return NAMES.get(n) ?? (`SIG${n}` as NodeJS.Signals);
}
