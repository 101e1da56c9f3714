// The container-engine baseline of the bench (issue 13: "pawl >= 5x faster than docker run"):
// docker when an engine runs, else podman when installed. The image is pawl's own rootfs imported
// as it is, so the engine starts the same node binary and the same harness that pawl does.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { hiddenCgroup2 } from '../dist/runtime/oci/runtime.js';

const IMAGE = 'localhost/pawl-bench-node';
const LABEL = 'pawl-bench'; // on every container the bench starts, to find any left behind
const CGROUP = 'pawl-bench-podman'; // podman's cgroup parent: a subtree of the bench's own
const CGROUP_ROOT = '/sys/fs/cgroup';
const lastLine = (s) => String(s ?? '').trim().split('\n').at(-1) ?? '';

/**
 * The engine to measure against, or why there is none. docker counts only when `docker info`
 * answers (an engine runs; the client alone does not). podman runs rootful, daemonless, with no
 * network (so no CNI/netavark rules), podman's default runtime crun, the cgroupfs manager and a
 * cgroup parent of the bench's own.
 */
export async function pickEngine() {
  const dockerClient = spawnSync('docker', ['--version'], { stdio: 'ignore' }).status === 0;
  const docker = dockerClient && spawnSync('docker', ['info'], { stdio: 'ignore' }).status === 0
    ? 'running'
    : dockerClient ? 'no engine here (`docker info` fails: only the client is installed)' : 'not installed';
  if (docker === 'running') {
    const version = lastLine(spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8' }).stdout);
    // docker cannot hand a container extra fds: the task runs as `node -e` of the same function.
    return { name: 'docker', version, docker, fds: false, wrap: [], bin: 'docker', global: [], run: ['--rm', '--network=none', '--pull=never', '--label', LABEL] };
  }
  const v = spawnSync('podman', ['--version'], { encoding: 'utf8' });
  if (v.status !== 0) return { name: null, docker, why: `docker: ${docker}; podman: not installed` };
  if (process.geteuid?.() !== 0) return { name: null, docker, why: `docker: ${docker}; podman: the bench runs it rootful and is not root` };
  // On a hybrid host crun refuses a cgroup2 mount that holds a controller ("cgroups in hybrid mode
  // not supported"): pawl's own crun runs hide it in a private mount namespace, and so does this.
  // Every mount podman makes (the overlay, its storage bind) then ends with that namespace too.
  const unified = await hiddenCgroup2();
  return {
    name: 'podman',
    version: lastLine(v.stdout).replace(/^podman version /, ''),
    docker,
    fds: true, // --preserve-fds: the harness gets its request and reply pipes as under pawl
    wrap: unified ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `umount ${unified} && exec "$@"`, 'sh'] : [],
    bin: 'podman',
    global: ['--runtime', 'crun', '--cgroup-manager', 'cgroupfs'],
    // The ulimits: podman asks for RLIMIT_NOFILE 1048576 (and its own NPROC) by default, above this
    // host's hard limits, which root cannot raise without CAP_SYS_RESOURCE; lowering is allowed.
    run: ['--rm', '--network=none', '--pull=never', `--cgroup-parent=/${CGROUP}`, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--label', LABEL],
  };
}

/** The argv of one `<engine> run` of `cmd` in `image`, handing it fds 3.. (podman) when `fds`. */
export function runArgv(e, image, cmd, fds = 0) {
  return [...e.wrap, e.bin, ...e.global, 'run', ...e.run, ...(fds ? [`--preserve-fds=${fds}`] : []), image, ...cmd];
}

/** `node -e` of the task's function with this input: the same work without the harness. */
export function taskScript(task, input) {
  const fn = task.source.trim().replace(/;\s*$/, '');
  return `Promise.resolve((${fn})(${JSON.stringify(input)}, { executionId: 'bench' })).then((o) => process.stdout.write(JSON.stringify(o)))`;
}

/**
 * The image of pawl's rootfs (`{ path, hash }` from ensureRootfs), tagged with the rootfs hash:
 * imported when missing, so a rebuilt rootfs (new node, new harness) means a new image; images
 * of older rootfs trees are removed.
 */
export async function ensureImage(e, rootfs) {
  const tag = `${IMAGE}:${rootfs.hash}`;
  if (spawnSync(e.bin, ['image', 'inspect', tag], { stdio: 'ignore' }).status !== 0) {
    await new Promise((resolve, reject) => {
      const tar = spawn('tar', ['-C', rootfs.path, '-c', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const imp = spawn(e.bin, ['import', '-', tag], { stdio: ['pipe', 'ignore', 'pipe'] });
      tar.stdout.pipe(imp.stdin);
      let err = '';
      tar.stderr.on('data', (b) => (err += b));
      imp.stderr.on('data', (b) => (err += b));
      let left = 2;
      const done = (what) => (code) => {
        if (code !== 0) reject(new Error(`${what} exited ${code}: ${lastLine(err)}`));
        else if (--left === 0) resolve();
      };
      tar.on('close', done('tar'));
      imp.on('close', done(`${e.bin} import`));
    });
  }
  const stale = spawnSync(e.bin, ['images', '--format', '{{.Repository}}:{{.Tag}}'], { encoding: 'utf8' }).stdout
    .split('\n').filter((t) => t.startsWith(`${IMAGE}:`) && t !== tag);
  if (stale.length) spawnSync(e.bin, ['rmi', ...stale], { stdio: 'ignore' });
  return tag;
}

/**
 * Nothing of the engine stays: no container of the bench (each ran with --rm; one killed midway
 * would not be), and for podman none of the cgroups its cgroupfs manager made (`<parent>/conmon`
 * and the parent, in every hierarchy). rmdir waits out the exit command conmon runs after a
 * container ends. Returns what could not be removed.
 */
export async function cleanupEngine(e) {
  const ids = spawnSync(e.bin, ['ps', '-aq', '--filter', `label=${LABEL}`], { encoding: 'utf8' }).stdout?.trim().split('\n').filter(Boolean) ?? [];
  if (ids.length) spawnSync(e.bin, ['rm', '-f', ...ids], { stdio: 'ignore' });
  const left = ids.map((id) => `container ${id}`);
  if (e.name !== 'podman') return left;
  for (const h of existsSync(CGROUP_ROOT) ? readdirSync(CGROUP_ROOT) : []) {
    for (const dir of [join(CGROUP_ROOT, h, CGROUP, 'conmon'), join(CGROUP_ROOT, h, CGROUP)]) {
      if (!existsSync(dir)) continue;
      if (!(await rmdirRetry(dir))) left.push(`${dir} (${readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim().split('\n').filter(Boolean).length} processes)`);
    }
  }
  return left;
}

async function rmdirRetry(dir) {
  for (let i = 0; i < 100; i++) {
    try {
      rmdirSync(dir);
      return true;
    } catch (err) {
      if (err.code !== 'EBUSY') return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return false;
}
