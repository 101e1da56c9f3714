// Where pawl keeps its state, without zod: the CLI's launcher (cli/code-cache.ts) reads it before
// any schema is loaded, and HostConfig (host.ts) takes its default from here.
export const DEFAULT_STATE_DIR = '/var/lib/pawl';

/** The state dir the environment chooses (PAWL_STATE_DIR), else the default. */
export const stateDirFromEnv = (env: NodeJS.ProcessEnv = process.env): string => env.PAWL_STATE_DIR || DEFAULT_STATE_DIR;
