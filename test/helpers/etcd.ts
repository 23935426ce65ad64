/**
 * Test harness: starts a REAL etcd (Debian's /usr/bin/etcd) on free loopback
 * ports with a throw-away data dir, optionally with TLS client certificates
 * and/or authentication. Every server started here is killed when the test
 * process exits, even if a suite forgets stop(); under Linux the child also
 * gets SIGKILL from the kernel if this process dies (setpriv --pdeathsig).
 *
 *   const etcd = await startEtcd({ tls: true, auth: true });
 *   ... etcd.endpoints, etcd.caFile, etcd.username ...
 *   await etcd.stop();
 */
import { killChild, once, spawnServer } from './children.js';
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sleep } from './wait.js';

const execFileP = promisify(execFile);

const ETCD = '/usr/bin/etcd';
const ETCDCTL = '/usr/bin/etcdctl';
const OPENSSL = '/usr/bin/openssl';

export interface EtcdServer {
  endpoints: string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  username?: string;
  password?: string;
  /** with auth: root's password, for tests that create restricted users */
  rootPassword?: string;
  dataDir: string;
  /** Kills etcd and removes its data dir. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface StartEtcdOptions {
  tls?: boolean;
  auth?: boolean;
  /** etcd's --quota-backend-bytes (default 100 MiB); 1 makes the first write raise the NOSPACE alarm. */
  quotaBackendBytes?: number;
}

/** Client-side TLS files a test (or etcdctl) uses against a TLS server. */
interface TlsFiles {
  caFile: string;
  serverCert: string;
  serverKey: string;
  certFile: string;
  keyFile: string;
}

/** A port that was free a moment ago (bind :0, read it, release it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'fleetx-etcd-'));
  try {
    const tls = opts.tls ? await makeCerts(join(dataDir, 'tls')) : undefined;
    // Ports picked by binding :0 can be taken by someone else before etcd
    // binds them; retry a few times on that race only.
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const started = await launch(dataDir, attempt, tls, opts.quotaBackendBytes);
        const server: EtcdServer = {
          endpoints: [started.endpoint],
          caFile: tls?.caFile,
          certFile: tls?.certFile,
          keyFile: tls?.keyFile,
          dataDir,
          stop: once(async () => {
            await killChild(started.child);
            await rm(dataDir, { recursive: true, force: true });
          }),
        };
        if (opts.auth) {
          try {
            Object.assign(server, await enableAuth(started.endpoint, tls));
          } catch (e) {
            await server.stop();
            throw e;
          }
        }
        return server;
      } catch (e) {
        lastError = e;
        if (!(e instanceof PortInUseError)) throw e;
      }
    }
    throw lastError;
  } catch (e) {
    await rm(dataDir, { recursive: true, force: true });
    throw e;
  }
}

class PortInUseError extends Error {}

async function launch(root: string, attempt: number, tls?: TlsFiles, quota = 104857600): Promise<{ child: ChildProcess; endpoint: string }> {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const scheme = tls ? 'https' : 'http';
  const endpoint = `${scheme}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const name = 'fleetx-test';
  const args = [
    `--name=${name}`,
    `--data-dir=${join(root, `data-${attempt}`)}`,
    `--listen-client-urls=${endpoint}`,
    `--advertise-client-urls=${endpoint}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${name}=${peer}`,
    '--initial-cluster-state=new',
    `--initial-cluster-token=fleetx-${clientPort}`,
    '--logger=zap',
    '--log-outputs=stderr',
    '--log-level=warn',
    // fast, small test servers
    '--heartbeat-interval=50',
    '--election-timeout=500',
    '--snapshot-count=10000',
    `--quota-backend-bytes=${quota}`,
  ];
  if (tls) {
    args.push(
      `--cert-file=${tls.serverCert}`,
      `--key-file=${tls.serverKey}`,
      '--client-cert-auth',
      `--trusted-ca-file=${tls.caFile}`,
    );
  }
  const child = spawnServer(ETCD, args);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    // keep only the tail: enough to explain a failed start
    stderr = (stderr + chunk).slice(-8000);
  });
  let exited: string | undefined;
  child.on('exit', (code, signal) => {
    exited = `etcd exited (code ${code}, signal ${signal})`;
  });
  child.on('error', (e) => {
    exited = `cannot run ${ETCD}: ${e.message}`;
  });

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited !== undefined) {
      const msg = `${exited} before becoming healthy:\n${stderr}`;
      throw /address already in use/.test(stderr) ? new PortInUseError(msg) : new Error(msg);
    }
    if (await healthy(endpoint, tls)) return { child, endpoint };
    if (Date.now() > deadline) {
      await killChild(child);
      throw new Error(`etcd at ${endpoint} not healthy after 20s:\n${stderr}`);
    }
    await sleep(100);
  }
}

function ctlArgs(endpoint: string, tls?: Pick<TlsFiles, 'caFile' | 'certFile' | 'keyFile'>, user?: string): string[] {
  const args = [`--endpoints=${endpoint}`, '--command-timeout=2s', '--dial-timeout=1s'];
  if (tls) args.push(`--cacert=${tls.caFile}`, `--cert=${tls.certFile}`, `--key=${tls.keyFile}`);
  if (user) args.push(`--user=${user}`);
  return args;
}

/** Runs etcdctl (API v3) against a test server, as root when it has auth. */
export async function etcdctlOn(server: EtcdServer, args: string[]): Promise<string> {
  const tls = server.caFile ? { caFile: server.caFile, certFile: server.certFile!, keyFile: server.keyFile! } : undefined;
  const user = server.rootPassword ? `root:${server.rootPassword}` : undefined;
  return etcdctl([...ctlArgs(server.endpoints[0]!, tls, user), ...args]);
}

async function etcdctl(args: string[]): Promise<string> {
  const { stdout } = await execFileP(ETCDCTL, args, { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 10_000 });
  return stdout;
}

async function healthy(endpoint: string, tls?: TlsFiles): Promise<boolean> {
  try {
    await etcdctl([...ctlArgs(endpoint, tls), 'endpoint', 'health']);
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates root (required by etcd before enabling auth) and a `fleetx` user
 * whose role may read and write every key, then turns auth on.
 */
async function enableAuth(endpoint: string, tls?: TlsFiles): Promise<{ username: string; password: string; rootPassword: string }> {
  const rootPassword = `root-${randomToken()}`;
  const password = `fleetx-${randomToken()}`;
  const base = ctlArgs(endpoint, tls);
  await etcdctl([...base, 'user', 'add', 'root', `--new-user-password=${rootPassword}`]);
  await etcdctl([...base, 'user', 'grant-role', 'root', 'root']);
  await etcdctl([...base, 'role', 'add', 'fleetx']);
  // an empty key with --from-key is etcd's spelling of "every key" (key "", range end "\0")
  await etcdctl([...base, 'role', 'grant-permission', 'fleetx', 'readwrite', '', '--from-key']);
  await etcdctl([...base, 'user', 'add', 'fleetx', `--new-user-password=${password}`]);
  await etcdctl([...base, 'user', 'grant-role', 'fleetx', 'fleetx']);
  await etcdctl([...base, 'auth', 'enable']);
  return { username: 'fleetx', password, rootPassword };
}

/** A throw-away CA, a server cert for 127.0.0.1/localhost and a client cert, all EC P-256 (fast). */
async function makeCerts(dir: string): Promise<TlsFiles> {
  await mkdir(dir, { recursive: true });
  const f = (n: string) => join(dir, n);
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ecKey, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2',
    '-subj', '/CN=fleetx-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await writeFile(f('server.ext'), [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth,clientAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '',
  ].join('\n'));
  await writeFile(f('client.ext'), [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=clientAuth',
    '',
  ].join('\n'));
  for (const [name, cn] of [['server', 'localhost'], ['client', 'fleetx']] as const) {
    await openssl(['req', '-new', ...ecKey, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`]);
    await openssl(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'),
      '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '2', '-extfile', f(`${name}.ext`)]);
  }
  return {
    caFile: f('ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    certFile: f('client.crt'),
    keyFile: f('client.key'),
  };
}

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileP(OPENSSL, args, { timeout: 20_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${err.stderr ?? err.message}`);
  }
}

function randomToken(): string {
  return Math.random().toString(36).slice(2, 12);
}

