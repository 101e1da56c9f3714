// pawl's own diagnostics: warnings and debug lines, as pino JSON lines on stderr (never stdout,
// which carries results). The level comes from PAWL_LOG_LEVEL (default warn). Not for the CLI's
// results or usage errors: those are plain lines (cli/output.ts).
import { pino, type Logger } from 'pino';
import { z } from 'zod';

export const LogLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
export type LogLevel = z.infer<typeof LogLevel>;

function create(): Logger {
  const asked = process.env.PAWL_LOG_LEVEL;
  const level = LogLevel.safeParse(asked ?? 'warn');
  // sync: a CLI process exits right after its last line; an async destination could lose it.
  const logger = pino({ name: 'pawl', level: level.success ? level.data : 'warn' }, pino.destination({ fd: 2, sync: true }));
  if (!level.success) logger.warn(`PAWL_LOG_LEVEL="${asked}" is not one of ${LogLevel.options.join(', ')}; using warn`);
  return logger;
}

let logger: Logger | null = null;

/** The process's logger, made on first use (so commands that log nothing never read the environment for it). */
export function log(): Logger {
  logger ??= create();
  return logger;
}
