/**
 * `fleetx presence --service NAME`: the presence syncer of one service,
 * run beside a load balancer by systemd (see src/presence/README.md). Logs
 * JSON lines to stderr for journald and runs until SIGTERM/SIGINT (or the
 * given signal); on exit its lease is revoked, so its statuses vanish.
 */
import { pino, type Logger } from 'pino';
import { usageError } from '../../errors/errors.js';
import { connect } from '../../registry/client.js';
import { keyspace } from '../../registry/keys.js';
import { PresenceSyncer } from '../../presence/syncer.js';
import { connectionFrom } from '../context.js';
import type { Io } from '../io.js';
import { waitForStop } from '../daemon.js';
import type { GlobalFlags } from '../program/flags.js';

export interface PresenceCommandOptions extends Partial<Omit<GlobalFlags, 'output'>> {
  service: string;
  /** TTL of the lease presence statuses live under, seconds (default 10) */
  ttl?: number;
  logLevel?: string;
  /** ends the syncer when aborted; default: SIGTERM/SIGINT of this process */
  signal?: AbortSignal;
}

/** Runs until the signal. Throws FleetxError 'usage' for bad flags; etcd or LB being down is logged and retried. */
export async function presenceCommand(opts: PresenceCommandOptions, io: Io): Promise<void> {
  if (!opts.service || opts.service.includes('/')) throw usageError(`--service must name one service, got "${opts.service ?? ''}"`);
  const ttl = opts.ttl ?? 10;
  if (!Number.isInteger(ttl) || ttl < 2) throw usageError(`--ttl must be an integer number of seconds >= 2, got ${ttl}`);
  const log = pino({ level: opts.logLevel ?? 'info', base: { svc: 'fleetx-presence', service: opts.service } }, { write: (line: string) => io.stderr(line) });
  const connection = await connectionFrom({ ...opts, output: 'text' }, io);
  const client = connect(connection);
  try {
    const syncer = new PresenceSyncer({ client, keys: keyspace(connection.prefix), service: opts.service, connection, leaseTtlSec: ttl });
    wireLogs(syncer, log);
    log.info({ endpoints: connection.endpoints, prefix: connection.prefix }, 'presence syncer starting');
    await syncer.start();
    await waitForStop(opts.signal, log);
    log.info('presence syncer stopping');
    await syncer.stop();
    log.info('presence syncer stopped');
  } finally {
    client.close();
    log.flush?.();
  }
}

function wireLogs(syncer: PresenceSyncer, log: Logger): void {
  syncer.on('state', (state) => log.info({ state }, 'syncer state'));
  syncer.on('problem', (msg, err) => log.warn(err === undefined ? {} : { err }, msg));
  syncer.on('pass', (p) => {
    const want = new Map(p.desired.map((d) => [d.unit, d]));
    for (const r of p.written) log.info({ unit: r.unit, state: r.state, sessions: r.sessions, address: r.address, reason: want.get(r.unit)?.reason }, `${r.unit} ${r.state}`);
    for (const o of p.observed) if (o.error) log.warn({ unit: o.unit, state: o.state }, o.error);
  });
}

