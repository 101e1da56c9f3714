// Errors pawl raises before or around a run (never the run's own outcome, which is a RunResult).
// `kind` says whose problem it is; the CLI maps every kind to exit status 2 with a one-line reason.
export type PawlErrorKind =
  | 'InvalidPolicy' // the policy or a flag is malformed or contradictory
  | 'InvalidTask' // the task directory/file cannot be loaded
  | 'HostUnsupported' // a requested protection cannot be applied on this host (fail closed)
  | 'RuntimeError'; // the sandbox could not be started

export class PawlError extends Error {
  constructor(readonly kind: PawlErrorKind, message: string) {
    super(message);
    this.name = 'PawlError';
  }
}
