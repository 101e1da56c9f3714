// Host tools (du, rm, chmod, ldd) run with node's own execFile. execa did this before, but its
// import alone cost ~125 ms of every CLI start (measured: `import('execa')` 127 ms vs
// child_process already loaded), and pawl needs none of its features on these calls: fixed
// absolute paths, no shell, output collected, never rejecting on a non-zero exit.
import { execFile } from 'node:child_process';

export interface ToolResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Run `file` with `args`; resolves (never rejects) with the exit code and trimmed output. */
/** `env`: the tool's whole environment (default: this process's). */
export function runTool(file: string, args: string[], opts: { timeout?: number; reject?: false; env?: NodeJS.ProcessEnv } = {}): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(file, args, { env: opts.env ?? process.env, timeout: opts.timeout ?? 0, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as NodeJS.ErrnoException).code === 'number' ? ((error as unknown as { code: number }).code) : null) : 0;
      resolve({ exitCode: code, stdout: stdout.trimEnd(), stderr: stderr.trimEnd() || (error && code === null ? error.message : '') });
    });
  });
}
