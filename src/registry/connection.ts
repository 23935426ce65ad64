/**
 * Where etcd is and how to talk to it. resolveConnection() merges flags and
 * environment into ConnectionOptions without touching the filesystem (pure,
 * testable with tables); checkConnectionFiles() is the one I/O step that
 * makes sure the TLS files can be read, before connect() needs them.
 *
 * Precedence: flags, then FLEETX_* env, then fleetctl's FLEETCTL_* env, so
 * scripts and shells set up for fleetctl keep working.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { usageError } from '../errors/errors.js';

export interface ConnectionOptions {
  /** normalized http(s)://host:port URLs, all with the same scheme */
  endpoints: string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  username?: string;
  password?: string;
  /** deadline for every unary etcd call (watches and keepalives have none) */
  requestTimeoutMs: number;
  /** key prefix without trailing slash, e.g. "/fleetx" */
  prefix: string;
}

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:2379';
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
export const DEFAULT_PREFIX = '/fleetx';
const DEFAULT_PORT = '2379';

type Field = 'endpoint' | 'caFile' | 'certFile' | 'keyFile' | 'prefix' | 'timeout' | 'username' | 'password';

/**
 * One row per setting: its flag (kebab-case as on the command line; the
 * camelCase spelling commander produces is accepted too) and the suffix of
 * its environment variables. fleetctl has no etcd username/password.
 */
const SETTINGS: ReadonlyArray<{ field: Field; flag: string; env: string; fleetctl: boolean }> = [
  { field: 'endpoint', flag: 'endpoint', env: 'ENDPOINT', fleetctl: true },
  { field: 'caFile', flag: 'ca-file', env: 'CA_FILE', fleetctl: true },
  { field: 'certFile', flag: 'cert-file', env: 'CERT_FILE', fleetctl: true },
  { field: 'keyFile', flag: 'key-file', env: 'KEY_FILE', fleetctl: true },
  { field: 'prefix', flag: 'etcd-key-prefix', env: 'ETCD_KEY_PREFIX', fleetctl: true },
  { field: 'timeout', flag: 'request-timeout', env: 'REQUEST_TIMEOUT', fleetctl: true },
  { field: 'username', flag: 'etcd-username', env: 'ETCD_USERNAME', fleetctl: false },
  { field: 'password', flag: 'etcd-password', env: 'ETCD_PASSWORD', fleetctl: false },
];

const camel = (kebab: string) => kebab.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const present = (v: string | undefined): v is string => v !== undefined && v.trim() !== '';

/** Where a value came from, so error messages point at the right knob. */
interface Sourced {
  value: string;
  source: string;
}

function pick(flags: Partial<Record<string, string | undefined>>, env: NodeJS.ProcessEnv, row: (typeof SETTINGS)[number]): Sourced | undefined {
  for (const name of [row.flag, camel(row.flag)]) {
    const v = flags[name];
    if (present(v)) return { value: v.trim(), source: `--${row.flag}` };
    // given but empty (`--endpoint ''`, often an unset shell variable): never fall back silently
    if (v !== undefined) throw usageError(`--${row.flag} is empty`, `leave the flag out to use FLEETX_${row.env} or the default`);
  }
  const vars = [`FLEETX_${row.env}`, ...(row.fleetctl ? [`FLEETCTL_${row.env}`] : [])];
  for (const name of vars) {
    const v = env[name];
    if (present(v)) return { value: v.trim(), source: name };
  }
  return undefined;
}

/**
 * Merges flags and environment into validated options.
 * @throws FleetxError 'usage' naming the offending flag/variable and value.
 */
export function resolveConnection(flags: Partial<Record<string, string | undefined>>, env: NodeJS.ProcessEnv): ConnectionOptions {
  const got = {} as Partial<Record<Field, Sourced>>;
  for (const row of SETTINGS) got[row.field] = pick(flags, env, row);

  const endpointSrc = got.endpoint ?? { value: DEFAULT_ENDPOINT, source: 'default' };
  const endpoints = parseEndpoints(endpointSrc);
  const secure = endpoints[0]!.startsWith('https:');
  if (endpoints.some((e) => e.startsWith('https:') !== secure)) {
    throw usageError(`${endpointSrc.source} mixes http and https endpoints (${endpoints.join(', ')})`, 'use one scheme for all etcd endpoints');
  }
  if (secure && !got.caFile) {
    throw usageError(`endpoint ${endpoints[0]} is https but no CA file is set`, 'pass --ca-file (or FLEETX_CA_FILE) with the CA that signed etcd\'s certificate');
  }
  if (!secure && (got.caFile || got.certFile || got.keyFile)) {
    const src = (got.caFile ?? got.certFile ?? got.keyFile)!.source;
    throw usageError(`${src} is set but endpoint ${endpoints[0]} is plain http`, 'use an https:// endpoint for TLS');
  }
  if (Boolean(got.certFile) !== Boolean(got.keyFile)) {
    throw usageError('a client certificate needs both --cert-file and --key-file', `only ${(got.certFile ?? got.keyFile)!.source} is set`);
  }
  if (Boolean(got.username) !== Boolean(got.password)) {
    throw usageError('etcd authentication needs both --etcd-username and --etcd-password', `only ${(got.username ?? got.password)!.source} is set`);
  }

  return {
    endpoints,
    caFile: got.caFile?.value,
    certFile: got.certFile?.value,
    keyFile: got.keyFile?.value,
    username: got.username?.value,
    password: got.password?.value,
    requestTimeoutMs: got.timeout ? parseTimeout(got.timeout) : DEFAULT_REQUEST_TIMEOUT_MS,
    prefix: got.prefix ? parsePrefix(got.prefix) : DEFAULT_PREFIX,
  };
}

/** Comma-separated http(s) URLs; a missing port means etcd's 2379. */
function parseEndpoints(src: Sourced): string[] {
  const parts = src.value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (parts.length === 0) throw usageError(`${src.source} is empty`, `e.g. ${DEFAULT_ENDPOINT}`);
  return parts.map((raw) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw usageError(`${src.source}: "${raw}" is not a URL`, `e.g. ${DEFAULT_ENDPOINT}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw usageError(`${src.source}: "${raw}" must be an http:// or https:// URL`, `e.g. ${DEFAULT_ENDPOINT}`);
    }
    if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) {
      throw usageError(`${src.source}: "${raw}" must be scheme://host:port only (no path, query or credentials)`);
    }
    // URL drops a port equal to the scheme's default; keep one the user wrote.
    const explicit = /^[a-z]+:\/\/(?:\[[^\]]*\]|[^/:]*):(\d+)/i.exec(raw)?.[1];
    const port = url.port || explicit || DEFAULT_PORT;
    return `${url.protocol}//${url.hostname}:${port}`;
  });
}

/** Seconds as a float, like fleetctl's --request-timeout. */
function parseTimeout(src: Sourced): number {
  const s = Number(src.value);
  if (!Number.isFinite(s) || s <= 0) {
    throw usageError(`${src.source}: request timeout "${src.value}" must be a positive number of seconds`, 'e.g. 5 or 0.5');
  }
  return Math.max(1, Math.round(s * 1000));
}

function parsePrefix(src: Sourced): string {
  const p = src.value.replace(/\/+$/, '');
  if (!p.startsWith('/') || /\s/.test(p)) {
    throw usageError(`${src.source}: key prefix "${src.value}" must start with "/" and contain no spaces`, `e.g. ${DEFAULT_PREFIX}`);
  }
  return p;
}

/**
 * Checks that the TLS files exist and are readable, so a typo is reported
 * as such rather than as an unreachable etcd.
 * @throws FleetxError 'usage' naming the file.
 */
export async function checkConnectionFiles(opts: ConnectionOptions): Promise<void> {
  const files: Array<[string, string | undefined]> = [
    ['CA file', opts.caFile],
    ['client certificate', opts.certFile],
    ['client key', opts.keyFile],
  ];
  for (const [what, file] of files) {
    if (file === undefined) continue;
    try {
      await access(file, constants.R_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable' : `cannot be read (${code ?? 'error'})`;
      throw usageError(`${what} ${file} ${why}`);
    }
  }
}
