// The in-sandbox HTTP proxy endpoint for programs under `pawl exec` in network mode restricted:
// node /opt/pawl/egress-forward.mjs SOCKET -- PROGRAM ARGS... It is copied alone into the rootfs,
// so it imports only node builtins. Common clients (curl, wget, pip) speak proxy over TCP, and the
// sandbox's only way out is the egress proxy's unix socket; this listens on 127.0.0.1 inside the
// sandbox's own network namespace and copies each connection's bytes to a fresh connection on
// that socket, unchanged. It decides nothing: every rule stays in the supervisor's proxy
// (src/network/proxy), and the program could open the socket itself anyway.
import { spawn } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';

const [socketPath, dashes, ...argv] = process.argv.slice(2);
if (!socketPath || dashes !== '--' || argv.length === 0) {
  process.stderr.write('usage: egress-forward.mjs SOCKET -- PROGRAM [ARGS...]\n');
  process.exit(2);
}

const server = createServer((client: Socket) => {
  const upstream = connect(socketPath);
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end).on('close', end);
  upstream.on('error', end).on('close', end);
  client.pipe(upstream);
  upstream.pipe(client);
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  const proxy = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env, HTTP_PROXY: proxy, HTTPS_PROXY: proxy, http_proxy: proxy, https_proxy: proxy };
  // Everything goes through the proxy: a NO_PROXY would only send a client to a dead end.
  delete env.NO_PROXY;
  delete env.no_proxy;
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env });
  child.on('error', (e) => {
    process.stderr.write(`pawl: cannot run ${argv[0]}: ${e.message}\n`);
    process.exit(127);
  });
  // The program's end is the sandbox's: its exit status, or death by the same signal.
  child.on('exit', (code, signal) => {
    server.close();
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 128);
  });
});
// The program's end, not the forwarder's, ends the sandbox: a stray signal to this process (the
// program's parent) does not cut the program off from its proxy. pawl's own kill is SIGKILL to all.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void 0);
