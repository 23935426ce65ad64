/**
 * HAProxy's runtime API (the "stats socket" at level admin), one command
 * per connection: HAProxy answers and closes in non-interactive mode, so a
 * connection never outlives a command and a restarted HAProxy needs no
 * reconnect logic.
 *
 * Errors (FleetxError): 'usage' for a malformed socket address or a socket
 * we may not open / a level below admin; 'unavailable' when HAProxy does not
 * listen or answer in time. A command HAProxy itself rejects ("No such
 * server.") is returned as text, for the caller to judge.
 */
import { connect, type Socket } from 'node:net';
import { FleetxError, usageError } from '../../errors/errors.js';

export type SocketAddress = { path: string } | { host: string; port: number };

/** `/run/haproxy/admin.sock`, `unix@/path` or `ipv4@127.0.0.1:9999`. @throws 'usage' */
export function parseSocket(spec: string): SocketAddress {
  if (spec.startsWith('/')) return { path: spec };
  if (spec.startsWith('unix@/')) return { path: spec.slice('unix@'.length) };
  const m = /^ipv4@([0-9.]+|[a-zA-Z0-9.-]+):(\d{1,5})$/.exec(spec);
  if (m && Number(m[2]) > 0 && Number(m[2]) < 65536) return { host: m[1]!, port: Number(m[2]) };
  throw usageError(`presence.socket "${spec}" is not an HAProxy runtime API address`, 'use an absolute unix socket path, unix@/path or ipv4@127.0.0.1:9999');
}

export const describeSocket = (a: SocketAddress) => ('path' in a ? a.path : `${a.host}:${a.port}`);

/** Sends one command and resolves with HAProxy's whole answer. */
export function runtimeCommand(addr: SocketAddress, command: string, timeoutMs: number): Promise<string> {
  const where = describeSocket(addr);
  return new Promise((resolve, reject) => {
    let settled = false;
    const chunks: string[] = [];
    const s: Socket = 'path' in addr ? connect(addr.path) : connect(addr.port, addr.host);
    const fail = (e: FleetxError) => {
      if (settled) return;
      settled = true;
      s.destroy();
      reject(e);
    };
    s.setEncoding('utf8');
    s.setTimeout(timeoutMs, () => fail(new FleetxError('unavailable', `HAProxy at ${where} did not answer "${verb(command)}" within ${timeoutMs} ms`)));
    s.on('connect', () => s.write(`${command}\n`));
    s.on('data', (d: string) => chunks.push(d));
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EACCES' || e.code === 'EPERM') {
        fail(new FleetxError('usage', `may not open HAProxy's admin socket ${where} (permission denied)`, {
          cause: e,
          hint: 'run the syncer as a user the socket allows (e.g. group haproxy; see src/presence/README.md)',
        }));
      } else {
        fail(new FleetxError('unavailable', `HAProxy's admin socket ${where} is not reachable (${e.code ?? e.message})`, { cause: e }));
      }
    });
    s.on('close', () => {
      if (settled) return;
      settled = true;
      const text = chunks.join('');
      if (/^Permission denied/m.test(text)) {
        reject(usageError(`HAProxy refused "${verb(command)}" on ${where} (permission denied)`, 'the stats socket needs "level admin"'));
      } else {
        resolve(text);
      }
    });
  });
}

/** First words of a command, for messages (never includes values we do not own). */
const verb = (command: string) => command.split(' ').slice(0, 3).join(' ');

export interface ServerStat {
  backend: string;
  server: string;
  /** UP, DOWN, MAINT, DRAIN, "UP 1/2", "no check", "MAINT (resolution)" … */
  status: string;
  /** current sessions */
  scur: number;
  /** "ip:port" as HAProxy has it */
  addr: string;
}

/**
 * Parses `show stat` CSV (header line "# pxname,svname,…") into the server
 * rows of one backend, looked up by column name so added columns in other
 * HAProxy versions do not matter. @throws 'unavailable' on an answer that
 * is not CSV, 'usage' when the backend does not exist.
 */
export function parseShowStat(text: string, backend: string): Map<string, ServerStat> {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines[0];
  if (!header?.startsWith('# ')) throw new FleetxError('unavailable', `unexpected answer to "show stat": ${JSON.stringify(text.slice(0, 80))}`);
  const cols = header.slice(2).split(',');
  const at = (name: string) => {
    const i = cols.indexOf(name);
    if (i < 0) throw new FleetxError('unavailable', `"show stat" has no ${name} column`);
    return i;
  };
  const [px, sv, st, sc, ad] = [at('pxname'), at('svname'), at('status'), at('scur'), cols.indexOf('addr')];
  const out = new Map<string, ServerStat>();
  let exists = false;
  for (const line of lines.slice(1)) {
    const f = line.split(',');
    if (f[px] === backend) exists = true;
    if (f[px] !== backend || f[sv] === 'FRONTEND' || f[sv] === 'BACKEND') continue;
    out.set(f[sv]!, { backend, server: f[sv]!, status: f[st] ?? '', scur: Number(f[sc] ?? 0) || 0, addr: ad >= 0 ? (f[ad] ?? '') : '' });
  }
  if (!exists) throw usageError(`HAProxy has no backend "${backend}"`, 'check presence.backend against the HAProxy config');
  return out;
}
