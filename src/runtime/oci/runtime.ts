// runc and crun behind the one runtime interface. A run is `create` (the container exists, inside
// pawl's cgroup, its init waiting), `start` (the program runs), the init's exit (reaped by this
// process as child subreaper, reaper.ts), and `delete --force` on every path out.
import { ChildStdio } from '../child-stdio.js';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { probeCgroups } from '../../cgroup/probe.js';
import type { HostConfig } from '../../config/host.js';
import { PawlError } from '../../errors.js';
import { ROOTFS_SYMLINKS } from '../../rootfs/layout.js';
import type { SandboxPlan } from '../../plan/plan.js';
import { idTime, ownerPid, partnerId } from '../ids.js';
import type { Writable } from 'node:stream';
import type { ContainerRuntime, CreateOptions, Launch, Prepared, RunSite, RuntimeSandbox, SandboxExit, SandboxInfo } from '../types.js';
import { BINARIES, bundleFiles, createCommand, deleteCommand, listCommand, startCommand, stateCommand, UMOUNT, UNSHARE, type OciCli, type OciRuntimeName } from './cli.js';
import { ociConfig, type OciFacts, type OciSpec } from './config.js';
import { holdSubreaper, tryReap, waitForExit } from './reaper.js';
import { spawnDirect, type Spawned, type StdioSlot } from '../spawn.js';
import { withDeadline } from '../../util/wait.js';
import { hostLacks } from '../../hostfacts/capabilities.js';

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

let usernsAllowed: boolean | undefined;
/** Whether this host lets pawl create user namespaces (user.max_user_namespaces > 0). */
function userns(): boolean {
  if (usernsAllowed === undefined) {
    const max = existsSync('/proc/self/ns/user') ? readFileSync('/proc/sys/user/max_user_namespaces', { encoding: 'utf8', flag: 'r' }).trim() : '0';
    usernsAllowed = Number(max) > 0;
  }
  return usernsAllowed;
}

/**
 * The second unprivileged host id an OCI sandbox needs: its root (used by the runtime's init while
 * it builds the sandbox) maps to the partner of the run's host id, so the two stay inside the
 * configured range and differ.
 */
export function rootHostId(host: HostConfig, hostId: number): number {
  if (host.hostIdCount < 2) throw new PawlError('HostUnsupported', 'runc/crun need hostIdCount >= 2: the sandbox root and its user map to two host ids');
  return partnerId(host, hostId);
}

export class OciRuntime implements ContainerRuntime {
  private binary: string | null = null;
  readonly keepsState = true;

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
    if (!this.installed()) throw hostLacks.program(`runtime "${this.name}"`, paths, pkg, ', or use --runtime bwrap');
    if (process.geteuid?.() !== 0) throw hostLacks.root(`runtime "${this.name}"`, ' (rootless containers are not supported); use --runtime bwrap');
    if (this.name === 'crun' && !(existsSync(UNSHARE) && existsSync(UMOUNT))) {
      throw new PawlError('HostUnsupported', `runtime "crun" needs ${UNSHARE} and ${UMOUNT} (Debian package util-linux) to hide cgroup2 on hybrid hosts`);
    }
  }

  private cli(root: string, hideUnified: string | null): OciCli {
    const binary = this.installed() ?? BINARIES[this.name].paths[0]!;
    return { name: this.name, binary, root, hideUnified: this.name === 'crun' ? hideUnified : null };
  }

  /** The run's facts (host ids, user namespaces, state dir), then the plan rendered as config.json. */
  async prepare(plan: SandboxPlan, site: RunSite): Promise<Prepared> {
    if (site.hostId === null) throw new PawlError('HostUnsupported', `runtime "${this.name}" needs pawl to run as root`);
    const facts: OciFacts = {
      root: bundleFiles(site.dir).root,
      cgroupsPath: `/${site.host.cgroupParent}/${site.cgroupName}`,
      hostIds: { user: site.hostId, root: rootHostId(site.host, site.hostId) },
      userns: userns(),
      sources: site.sources?.staged ?? null,
    };
    const config = ociConfig(plan, facts);
    const cli = this.cli(OciRuntime.stateRoot(this.name, site.host), await hiddenCgroup2());
    // fds 3 and 4 (task mode: the harness protocol) pass into the container.
    const preserveFds = plan.fds.task ? 2 : 0;
    const create = createCommand(cli, site.id, site.dir, preserveFds);
    // The runtime's own argv (explain), and what is spawned: the same, or inside crun's namespace.
    const runtime = cli.hideUnified ? createCommand({ ...cli, hideUnified: null }, site.id, site.dir, preserveFds) : create;
    return {
      runtime,
      spawn: create,
      config,
      root: `${facts.root}, an empty dir, read-only after set-up`,
      create: (io) => this.create(create, config, cli, site, plan.fds.task, io),
    };
  }

  private async create(spawnCmd: Launch, config: OciSpec, cli: OciCli, site: RunSite, task: boolean, io: CreateOptions): Promise<RuntimeSandbox> {
    const files = bundleFiles(site.dir);
    // The root is an empty dir of this run: the runtime creates the mount points in it, and it
    // turns read-only once they exist. Owned by the sandbox's root (mapped), which makes them.
    await mkdir(files.root, { mode: 0o755 });
    await chmod(files.root, 0o755); // whatever the umask: the task's user enters its own /
    for (const [link, target] of Object.entries(ROOTFS_SYMLINKS)) await symlink(target, join(files.root, link));
    const rootId = config.linux.uidMappings?.find((m) => m.containerID === 0)?.hostID;
    if (rootId !== undefined) await chown(files.root, rootId, rootId);
    await writeFile(files.config, JSON.stringify(config), { mode: 0o600 });
    await mkdir(cli.root, { recursive: true, mode: 0o700 });

    // From here until create exits, orphans are this process's: the container's init among them.
    const release = holdSubreaper();
    let child: Spawned;
    try {
      const stdio = [io.stdin, 'pipe', 'pipe', ...(task ? ['pipe', 'pipe'] : [])] as StdioSlot[];
      // runc and crun make the mount points in the container's root with the umask they inherit:
      // a hardened root's 077 or 027 made /opt and /usr unenterable for the task's user (EACCES at
      // exec). 022 for the spawn only, which is synchronous: the supervisor's own files set their modes.
      const umask = process.umask(0o022);
      try {
        child = spawnDirect(spawnCmd.file, spawnCmd.args, stdio);
      } finally {
        process.umask(umask);
      }
    } catch (e) {
      release();
      throw new PawlError('RuntimeError', `cannot run ${spawnCmd.file}: ${(e as Error).message}`);
    }
    child.once('exit', release);
    (child.stdio[3] as Writable | null)?.on('error', () => {}); // the sandbox may die before reading
    return new OciSandbox(this.name, cli, site.id, files, child);
  }

  async list(host: HostConfig): Promise<SandboxInfo[]> {
    const root = OciRuntime.stateRoot(this.name, host);
    // Listing a --root that does not exist would create it. An empty root holds no container
    // (each has a dir there): no process to spawn, which gc does on every CLI run.
    if (!existsSync(root) || readdirSync(root).length === 0 || !this.available()) return [];
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

class OciSandbox extends ChildStdio implements RuntimeSandbox {
  readonly exited: Promise<SandboxExit>;
  readonly closed: Promise<void>;
  /** The init's pid once `create` has exited; its creator gone, the init is this process's child. */
  private readonly created: Promise<number>;
  private init: number | null = null;
  get initPid(): number | null {
    return this.init;
  }
  private reaped = false;
  private destroying: Promise<void> | null = null;
  /** create or start failed: the runtime's own words (its log), or null. */
  setupError: string | null = null;
  readonly signalIsProgram = true;
  readonly auditPid = null;

  constructor(
    private readonly name: OciRuntimeName,
    private readonly cli: OciCli,
    private readonly id: string,
    files: ReturnType<typeof bundleFiles>,
    child: Spawned,
  ) {
    super(child);
    this.closed = new Promise((resolve) => child.once('close', () => resolve()));
    this.created = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))).then(async (code) => {
      const pid = code === 0 ? Number((await readFile(files.pidFile, 'utf8').catch(() => '')).trim()) : NaN;
      if (Number.isInteger(pid) && pid > 0) return (this.init = pid);
      const why = (await loggedError(files.log)) ?? `exit status ${code}`;
      throw new PawlError('RuntimeError', `${name} create failed: ${why}`);
    });
    // A failed create never had a program: it has ended at once (setupFailed() says why).
    this.exited = this.created.then(
      (pid) => waitForExit(pid).then((exit) => ((this.reaped = true), exit)),
      (e: Error) => ((this.setupError = e.message), { code: null, signal: null }),
    );
  }


  setupFailed(): boolean {
    return this.setupError !== null;
  }

  /** A failed create or start is recorded (setupError), not thrown: the run reports it as its result. */
  async start(): Promise<void> {
    try {
      await this.created;
    } catch {
      return;
    }
    await run(startCommand(this.cli, this.id)).catch(async (e: Error) => {
      this.setupError = `${this.name} start failed: ${e.message}`;
      // Its init waits for a start that will not come: end it, so the run's end comes.
      await this.kill();
    });
  }

  killNamespace(): boolean {
    // Safe by pid: an unreaped child's pid cannot be reused.
    if (this.init === null || this.reaped) return false;
    try {
      process.kill(this.init, 'SIGKILL');
      return true;
    } catch {
      return false;
    }
  }

  async kill(): Promise<void> {
    if (this.init === null || this.reaped) return;
    this.killNamespace(); // false: already gone, and its exit is on its way
    await withDeadline(this.exited, KILL_WAIT_MS);
  }

  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      // create must be over first: deleting a container that is still being created races it.
      await withDeadline(this.created.catch(() => null), KILL_WAIT_MS);
      try {
        await run(deleteCommand(this.cli, this.id));
      } catch (e) {
        // Nothing to delete is fine (create failed before the state existed); anything else is not.
        const gone = await run(stateCommand(this.cli, this.id)).then(() => false, () => true);
        if (!gone) throw new PawlError('RuntimeError', `${this.name} delete --force failed: ${(e as Error).message}`);
      }
      // delete --force killed the init if it still ran: reap it, so no zombie is left.
      if (this.init !== null) await withDeadline(this.exited, KILL_WAIT_MS);
    })();
    return this.destroying;
  }
}
