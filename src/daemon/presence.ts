/**
 * The presence daemon (`fleetx presence --service NAME`): the presence
 * syncer of one service, run beside a load balancer by systemd (see
 * src/presence/README.md). Logs JSON lines for journald and runs until the
 * stop signal; on exit its lease is revoked, so its statuses vanish.
 */
import { pino } from 'pino';
import { usageError } from '../errors/errors.js';
import { PresenceSyncer } from '../presence/syncer.js';
import { connect } from '../registry/client.js';
import type { ConnectionOptions } from '../registry/connection.js';
import { keyspace } from '../registry/keys.js';
import { parseListen, serveMetricsLogged, type MetricsServer } from '../metrics/server.js';
import { logPresence } from './logs.js';
import { waitForStop } from './signals.js';

export interface PresenceDaemonOptions {
  connection: ConnectionOptions;
  service: string;
  /** TTL of the lease presence statuses live under, seconds (default 10) */
  ttlSec?: number;
  /** Prometheus endpoint: HOST:PORT, :PORT or off (default off: several syncers often share a machine; src/metrics/) */
  metricsListen?: string;
  logLevel?: string;
  writeLog: (line: string) => void;
  /** ends the syncer when aborted; default: SIGTERM/SIGINT of this process */
  signal?: AbortSignal;
}

/** Runs until the stop signal. Throws FleetxError 'usage' for bad options; etcd or LB being down is logged and retried. */
export async function runPresenceDaemon(opts: PresenceDaemonOptions): Promise<void> {
  if (!opts.service || opts.service.includes('/')) throw usageError(`--service must name one service, got "${opts.service ?? ''}"`);
  const ttl = opts.ttlSec ?? 10;
  if (!Number.isInteger(ttl) || ttl < 2) throw usageError(`--ttl must be an integer number of seconds >= 2, got ${ttl}`);
  const metricsAt = parseListen(opts.metricsListen ?? 'off');
  const log = pino({ level: opts.logLevel ?? 'info', base: { svc: 'fleetx-presence', service: opts.service } }, { write: opts.writeLog });
  const { connection } = opts;
  // loaded only when served, as in the host daemon
  const metrics = metricsAt && new (await import('../metrics/host.js')).HostMetrics();
  const client = connect(connection, metrics ? { interceptors: [metrics.etcdInterceptor()] } : {});
  let endpoint: MetricsServer | undefined;
  try {
    const syncer = new PresenceSyncer({ client, keys: keyspace(connection.prefix), service: opts.service, connection, leaseTtlSec: ttl });
    logPresence(syncer, log);
    if (metrics) {
      metrics.watchPresence(syncer, opts.service);
      endpoint = await serveMetricsLogged(metricsAt, metrics.registry, log);
    }
    log.info({ endpoints: connection.endpoints, prefix: connection.prefix }, 'presence syncer starting');
    await syncer.start();
    await waitForStop(opts.signal, log);
    log.info('presence syncer stopping');
    await syncer.stop();
    log.info('presence syncer stopped');
  } finally {
    await endpoint?.close();
    client.close();
    log.flush?.();
  }
}
