// runc and crun behind the one runtime interface. A run is `create` (the container exists, inside
// pawl's cgroup, its init waiting), `start` (the program runs), the init's exit (reaped by this
// process as child subreaper, reaper.ts), and `delete --force` on every path out.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { probeCgroups } from '../../cgroup/probe.js';
import type { HostConfig } from '../../config/host.js';
import { PawlError } from '../../errors.js';
import { ROOTFS_SYMLINKS } from '../../rootfs/layout.js';
import { idTime, ownerPid } from '../../supervisor/ids.js';
import type {
  ContainerRuntime, CreateOptions, Launch, RuntimePlan, RuntimePlanInput, RuntimeSandbox, SandboxExit, SandboxInfo,
} from '../types.js';
import { BINARIES, bundleFiles, createCommand, deleteCommand, listCommand, startCommand, stateCommand, UMOUNT, UNSHARE, type OciCli, type OciRuntimeName } from './cli.js';
import { ociConfig } from './config.js';
import { holdSubreaper, tryReap, waitForExit } from './reaper.js';
import { spawnWithoutStrayFds } from '../fds.js';

const KILL_WAIT_MS = 2000;

/** Run a short runtime command; resolves with its output, rejects with its message. */
function run(cmd: Launch, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd.file, cmd.args, { env: {}, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd.file} ${cmd.args.join(' ')}: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
  });
}

/**
 * The first error the runtime logged (--log-format json: one object per line): the cause, where
 * later lines only say that the set-up process went away.
 */
async function loggedError(log: string): Promise<string | null> {
  const text = await readFile(log, 'utf8').catch(() => '');
  for (const line of text.split('\n').filter((l) => l.trim())) {
    let entry: { level?: string; msg?: string };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      return line.trim();
    }
    if (entry.msg && (entry.level === 'error' || entry.level === 'fatal')) {
      return entry.msg.replace(/^nsexec-\d+\[\d+\]: /, '').replace(/^(runc|crun) create failed: /, '');
    }
  }
  return null;
}

/** On a hybrid host (v1 controllers, a cgroup2 mount beside them): that mount, which crun must not see. */
export async function hiddenCgroup2(): Promise<string | null> {
  const { version, unified } = await probeCgroups();
  return version === 'v1' ? unified : null;
}

/** The run's start time from its id ("<ms base36>-<pid>-<hex>", supervisor/ids.ts). */

export class OciRuntime implements ContainerRuntime {
  private binary: string | null = null;

  constructor(readonly name: OciRuntimeName) {}

  /** pawl's state dir for this runtime: one per cgroup parent, like pawl's cgroup subtree. */
  static stateRoot(name: OciRuntimeName, host: HostConfig): string {
    return join('/run/pawl', name, host.cgroupParent);
  }

  /** The installed binary, or null. */
  private installed(): string | null {
    this.binary ??= BINARIES[this.name].paths.find((p) => existsSync(p)) ?? null;
    return this.binary;
  }

  assertAvailable(): void {
    const { paths, pkg } = BINARIES[this.name];
    if (!this.installed()) throw new PawlError('HostUnsupported', `runtime "${this.name}" is not installed (looked for ${paths.join(', ')}): install the Debian package "${pkg}", or use --runtime bwrap`);
    if (process.geteuid?.() !== 0) throw new PawlError('HostUnsupported', `runtime "${this.name}" needs pawl to run as root (rootless containers are not supported); use --runtime bwrap`);
    if (this.name === 'crun' && !(existsSync(UNSHARE) && existsSync(UMOUNT))) {
      throw new PawlError('HostUnsupported', `runtime "crun" needs ${UNSHARE} and ${UMOUNT} (Debian package util-linux) to hide cgroup2 on hybrid hosts`);
    }
  }

  private cli(root: string, hideUnified: string | null): OciCli {
    const binary = this.installed() ?? BINARIES[this.name].paths[0]!;
    return { name: this.name, binary, root, hideUnified: this.name === 'crun' ? hideUnified : null };
  }

  plan(i: RuntimePlanInput): RuntimePlan {
    const f = i.oci;
    if (!f) throw new PawlError('RuntimeError', `runtime "${this.name}" needs the run's OCI facts`);
    const { spec } = i;
    const config = ociConfig({
      policy: spec.policy, rootfs: spec.rootfs, root: bundleFiles(f.bundle).root, workspace: spec.workspace, command: spec.command,
      limits: i.limits, rlimits: i.rlimits, cgroupsPath: f.cgroupsPath, cgroupVersion: f.cgroupVersion, hostIds: f.hostIds,
      userns: f.userns, seccomp: f.seccomp, egressSocket: spec.egressSocket ?? null, mountSources: spec.mountSources ?? null,
    });
    const cli = this.cli(f.stateRoot, f.hideUnified);
    const create = createCommand(cli, f.id, f.bundle, f.preserveFds);
    // The runtime's own argv (explain), and what is spawned: the same, or inside crun's namespace.
    const runtime = cli.hideUnified ? createCommand({ ...cli, hideUnified: null }, f.id, f.bundle, f.preserveFds) : create;
    return { runtime, spawn: create, config, oci: f };
  }

  async create(plan: RuntimePlan, opts: CreateOptions): Promise<RuntimeSandbox> {
    const { config, oci } = plan;
    if (!config || !oci) throw new PawlError('RuntimeError', `runtime "${this.name}" was given a plan without config.json`);
    const cli = this.cli(oci.stateRoot, oci.hideUnified);
    const files = bundleFiles(oci.bundle);
    // The root is an empty dir of this run: the runtime creates the mount points in it, and it
    // turns read-only once they exist. Owned by the sandbox's root (mapped), which makes them.
    await mkdir(files.root, { mode: 0o755 });
    for (const [link, target] of Object.entries(ROOTFS_SYMLINKS)) await symlink(target, join(files.root, link));
    const rootId = config.linux.uidMappings?.find((m) => m.containerID === 0)?.hostID;
    if (rootId !== undefined) await chown(files.root, rootId, rootId);
    await writeFile(files.config, JSON.stringify(config), { mode: 0o600 });
    await mkdir(oci.stateRoot, { recursive: true, mode: 0o700 });

    // From here until create exits, orphans are this process's: the container's init among them.
    const release = holdSubreaper();
    let child: ChildProcess;
    try {
      child = spawnWithoutStrayFds(() => spawn(plan.spawn.file, plan.spawn.args, { env: {}, stdio: opts.stdio, detached: false }));
    } catch (e) {
      release();
      throw e;
    }
    child.once('exit', release);
    const sandbox = new OciSandbox(this.name, cli, oci.id, files, child);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (e) => {
        release();
        reject(new PawlError('RuntimeError', `cannot run ${plan.spawn.file}: ${e.message}`));
      });
    });
    return sandbox;
  }

  async list(host: HostConfig): Promise<SandboxInfo[]> {
    const root = OciRuntime.stateRoot(this.name, host);
    // Listing a --root that does not exist would create it.
    if (!existsSync(root) || !this.available()) return [];
    const out = await run(listCommand(this.cli(root, null)));
    const entries = (JSON.parse(out.trim() || 'null') ?? []) as { id: string; status: string; pid: number }[];
    const now = Date.now();
    return entries.map((e) => ({ id: e.id, runtime: this.name, state: e.status, ageMs: now - idTime(e.id), owner: ownerPid(e.id), pid: e.pid || null }));
  }

  async remove(host: HostConfig, sandbox: SandboxInfo): Promise<void> {
    await run(deleteCommand(this.cli(OciRuntime.stateRoot(this.name, host), await hiddenCgroup2()), sandbox.id));
    // Its init may have been handed to this process (a subreaper) when its supervisor died. Only
    // an init that was alive when listed: its pid is still its own (a zombie until reaped).
    if (sandbox.pid && sandbox.state !== 'stopped') tryReap(sandbox.pid);
  }

  private available(): boolean {
    try {
      this.assertAvailable();
      return true;
    } catch {
      return false;
    }
  }
}

class OciSandbox implements RuntimeSandbox {
  readonly exited: Promise<SandboxExit>;
  readonly closed: Promise<void>;
  /** The init's pid once `create` has exited; its creator gone, the init is this process's child. */
  private readonly created: Promise<number>;
  private pid: number | null = null;
  get initPid(): number | null {
    return this.pid;
  }
  private reaped = false;
  private destroying: Promise<void> | null = null;

  constructor(
    private readonly name: OciRuntimeName,
    private readonly cli: OciCli,
    private readonly id: string,
    files: ReturnType<typeof bundleFiles>,
    readonly child: ChildProcess,
  ) {
    this.closed = new Promise((resolve) => child.once('close', () => resolve()));
    this.created = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))).then(async (code) => {
      const pid = code === 0 ? Number((await readFile(files.pidFile, 'utf8').catch(() => '')).trim()) : NaN;
      if (Number.isInteger(pid) && pid > 0) return (this.pid = pid);
      const why = (await loggedError(files.log)) ?? `exit status ${code}`;
      throw new PawlError('RuntimeError', `${name} create failed: ${why}`);
    });
    // A failed create never had a program: start() reports it, and nothing waits for this.
    this.exited = this.created.then(
      (pid) => waitForExit(pid).then((exit) => ((this.reaped = true), exit)),
      () => ({ code: null, signal: null }),
    );
  }

  async start(): Promise<void> {
    await this.created;
    await run(startCommand(this.cli, this.id)).catch((e: Error) => {
      throw new PawlError('RuntimeError', `${this.name} start failed: ${e.message}`);
    });
  }

  async kill(): Promise<void> {
    // Safe by pid: an unreaped child's pid cannot be reused.
    if (this.pid === null || this.reaped) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, KILL_WAIT_MS))]);
  }

  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      // create must be over first: deleting a container that is still being created races it.
      await Promise.race([this.created.catch(() => null), new Promise((r) => setTimeout(r, KILL_WAIT_MS))]);
      try {
        await run(deleteCommand(this.cli, this.id));
      } catch (e) {
        // Nothing to delete is fine (create failed before the state existed); anything else is not.
        const gone = await run(stateCommand(this.cli, this.id)).then(() => false, () => true);
        if (!gone) throw new PawlError('RuntimeError', `${this.name} delete --force failed: ${(e as Error).message}`);
      }
      // delete --force killed the init if it still ran: reap it, so no zombie is left.
      if (this.pid !== null) await Promise.race([this.exited, new Promise((r) => setTimeout(r, KILL_WAIT_MS))]);
    })();
    return this.destroying;
  }
}
