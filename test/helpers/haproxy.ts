/**
 * Test harness: a REAL HAProxy (Debian's /usr/sbin/haproxy, 2.6) in the
 * foreground with its config in a throw-away directory:
 * - a frontend on a free 127.0.0.1 port;
 * - one backend with pre-declared, disabled slots (`server app-1 0.0.0.0:1
 *   disabled check`), health-checked with `GET /healthz` every 200 ms,
 *   2 checks to rise or fall — the layout docs/ROLLOUT.md asks operators for;
 * - a runtime API socket (`level admin`) in the same directory.
 *
 *   const lb = await startHaproxy({ backend: 'app', slots: ['app-1', 'app-2'] });
 *   ... lb.socket, lb.frontendPort ...
 *   await lb.stop();
 *
 * Every HAProxy started here is killed when the test process exits, and by
 * the kernel if this process dies (setpriv --pdeathsig).
 */
import { killChild, once, spawnServer } from './children.js';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './etcd.js';
import { sleep } from './wait.js';

const HAPROXY = '/usr/sbin/haproxy';

export interface HaproxyServer {
  /** admin socket path (unix) */
  socket: string;
  /** the same runtime API over TCP: ipv4@127.0.0.1:PORT */
  tcpSocket: string;
  frontendPort: number;
  dir: string;
  /** Sends one runtime API command and returns the answer. */
  command(cmd: string): Promise<string>;
  /** `show stat` rows of the backend's servers: name -> { status, scur, addr } */
  servers(): Promise<Map<string, { status: string; scur: number; addr: string }>>;
  /** Kills HAProxy and starts it again from its config (runtime changes are lost, as on a real restart). */
  restart(downMs?: number): Promise<void>;
  /** Kills HAProxy and removes its directory. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface StartHaproxyOptions {
  backend: string;
  slots: string[];
}

export async function startHaproxy(opts: StartHaproxyOptions): Promise<HaproxyServer> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetx-haproxy-'));
  const socket = join(dir, 'admin.sock');
  const frontendPort = await freePort();
  const tcpSocket = `ipv4@127.0.0.1:${await freePort()}`;
  const config = [
    'global',
    `  stats socket ${socket} mode 600 level admin`,
    `  stats socket ${tcpSocket} level admin`,
    '  stats timeout 30s',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 30s',
    '  timeout server 30s',
    'frontend fe',
    `  bind 127.0.0.1:${frontendPort}`,
    `  default_backend ${opts.backend}`,
    `backend ${opts.backend}`,
    '  balance roundrobin',
    '  option httpchk GET /healthz',
    '  default-server inter 200ms fall 2 rise 2',
    ...opts.slots.map((s) => `  server ${s} 0.0.0.0:1 disabled check`),
    '',
  ].join('\n');
  const cfgFile = join(dir, 'haproxy.cfg');
  await writeFile(cfgFile, config);
  const command = (c: string) => runtimeCommand(socket, c);
  let child: ChildProcess;
  try {
    child = await spawnHaproxy(cfgFile, command);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const stop = once(async () => {
    await killChild(child);
    await rm(dir, { recursive: true, force: true });
  });
  return {
    socket,
    tcpSocket,
    frontendPort,
    dir,
    command,
    servers: async () => {
      const text = await command('show stat');
      const lines = text.split('\n').filter((l) => l.trim() !== '');
      const head = lines[0]!.replace(/^# /, '').split(',');
      const col = (n: string) => head.indexOf(n);
      const out = new Map<string, { status: string; scur: number; addr: string }>();
      for (const l of lines.slice(1)) {
        const f = l.split(',');
        if (f[col('pxname')] !== opts.backend || ['FRONTEND', 'BACKEND'].includes(f[col('svname')]!)) continue;
        out.set(f[col('svname')]!, { status: f[col('status')]!, scur: Number(f[col('scur')]), addr: f[col('addr')] ?? '' });
      }
      return out;
    },
    restart: async (downMs = 0) => {
      await killChild(child);
      await sleep(downMs);
      child = await spawnHaproxy(cfgFile, command);
    },
    stop,
  };
}

/** Starts HAProxy in the foreground and waits until its runtime API answers. */
async function spawnHaproxy(cfgFile: string, command: (c: string) => Promise<string>): Promise<ChildProcess> {
  const args = ['-db', '-f', cfgFile];
  const child = spawnServer(HAPROXY, args);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (c: string) => (stderr = (stderr + c).slice(-8000)));
  let exited: string | undefined;
  child.on('exit', (code, signal) => {
    exited = `haproxy exited (code ${code}, signal ${signal})`;
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) throw new Error(`${exited} at start:\n${stderr}`);
    if (await command('show info').then(() => true, () => false)) return child;
    if (Date.now() > deadline) {
      await killChild(child);
      throw new Error(`haproxy not answering after 10s:\n${stderr}`);
    }
    await sleep(50);
  }
}

/** One command over a fresh connection (HAProxy closes it after answering). */
function runtimeCommand(socket: string, cmd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let out = '';
    s.setEncoding('utf8');
    s.setTimeout(3000, () => s.destroy(new Error(`timeout on ${cmd}`)));
    s.on('connect', () => s.write(`${cmd}\n`));
    s.on('data', (d: string) => (out += d));
    s.on('error', reject);
    s.on('close', () => resolve(out));
  });
}

export interface TestBackend {
  host: string;
  port: number;
  /** requests served (not counting /healthz) */
  hits: number;
  healthy: boolean;
  close(): Promise<void>;
}

/**
 * A small HTTP backend: `/healthz` answers 200 (or 503 when !healthy),
 * `/slow?ms=N` answers after N ms, anything else answers with its name at
 * once. Any 127.x.y.z address works on Linux loopback, so several backends
 * can share one port on different addresses (as instances on different
 * machines share the service's port).
 */
export async function startBackend(name: string, host = '127.0.0.1', port?: number): Promise<TestBackend> {
  port ??= await freePort();
  const b: TestBackend = { host, port, hits: 0, healthy: true, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/healthz') {
      res.writeHead(b.healthy ? 200 : 503).end(b.healthy ? 'ok' : 'sick');
      return;
    }
    b.hits++;
    const ms = url.pathname === '/slow' ? Number(url.searchParams.get('ms') ?? '1000') : 0;
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end(name), ms);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  b.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return b;
}

