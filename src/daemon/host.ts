/**
 * The host daemon (`fleetx agent`, run by systemd on every host): one
 * process holding the Agent, the Engine (which elects one scheduler among
 * all agents) and the RolloutController (which acts only while its engine
 * leads), on one etcd client and one systemd connection. Logs JSON lines
 * for journald and runs until the stop signal.
 *
 * On stop units are LEFT RUNNING by default (see src/agent/README.md);
 * `purgeOnExit` stops and removes them and revokes the lease, as fleet did.
 */
import type { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { Agent } from '../agent/agent.js';
import { resolveIdentity, type IdentityOptions } from '../agent/identity.js';
import { RolloutController } from '../controller/controller.js';
import { Engine } from '../engine/engine.js';
import { usageError } from '../errors/errors.js';
import { DEFAULT_METRICS_LISTEN, parseListen, serveMetricsLogged, type MetricsServer } from '../metrics/server.js';
import { connect } from '../registry/client.js';
import type { ConnectionOptions } from '../registry/connection.js';
import { keyspace } from '../registry/keys.js';
import { connectSystemd } from '../systemd/systemd.js';
import type { Systemd } from '../systemd/types.js';
import { logAgent, logEngine, logRollouts } from './logs.js';
import { waitForStop } from './signals.js';
import { packageVersion } from './version.js';

export interface HostDaemonOptions {
  /** resolved etcd connection (TLS files already checked) */
  connection: ConnectionOptions;
  identity: IdentityOptions;
  /** lease TTL, seconds (default 10) */
  ttlSec?: number;
  /** safety-net resync interval, seconds (default 60) */
  resyncSec?: number;
  /** where unit files go (default /run/systemd/system) */
  unitDir?: string;
  /**
   * The systemd driver, already connected (default: systemd over D-Bus).
   * Only control-plane benchmarks pass another one: the hollow driver of
   * src/systemd/hollow.ts (bench/scale.ts). It is closed with the daemon.
   */
  systemd?: Systemd;
  /** on stop, stop and remove this host's units and revoke the lease */
  purgeOnExit?: boolean;
  /** run the leader-elected engine and rollout controller here too (default true) */
  engine?: boolean;
  /** where the Prometheus endpoint listens: HOST:PORT, :PORT or off (default 127.0.0.1:9170; src/metrics/) */
  metricsListen?: string;
  /** log level (default info) */
  logLevel?: string;
  /** where JSON log lines go (one call per line) */
  writeLog: (line: string) => void;
  /** ends the daemon when aborted; default: SIGTERM/SIGINT of this process */
  signal?: AbortSignal;
}

/**
 * Runs until the stop signal. Throws FleetxError 'usage' for bad options,
 * 'unavailable' when systemd's bus cannot be reached at start.
 * etcd being down is not an error: the agent waits for it.
 */
export async function runHostDaemon(opts: HostDaemonOptions): Promise<void> {
  const ttl = opts.ttlSec ?? 10;
  if (!Number.isInteger(ttl) || ttl < 2) throw usageError(`--ttl must be an integer number of seconds >= 2, got ${ttl}`);
  const resync = opts.resyncSec ?? 60;
  if (!(resync > 0)) throw usageError(`--resync must be a positive number of seconds, got ${resync}`);
  const metricsAt = parseListen(opts.metricsListen ?? DEFAULT_METRICS_LISTEN);

  const log = pino({ level: opts.logLevel ?? 'info', base: { svc: 'fleetx-agent' } }, { write: opts.writeLog });
  const { connection } = opts;
  const identity = await resolveIdentity(opts.identity);
  const keys = keyspace(connection.prefix);
  const version = await packageVersion();

  const systemd = opts.systemd ?? (await connectSystemd({ unitDir: opts.unitDir }));
  // loaded only when served: an agent with metrics off never loads prom-client
  const metrics = metricsAt && new (await import('../metrics/host.js')).HostMetrics();
  let client: Etcd3 | undefined;
  let endpoint: MetricsServer | undefined;
  try {
    client = connect(connection, metrics ? { interceptors: [metrics.etcdInterceptor()] } : {});
    const agent = new Agent({ client, systemd, keys, identity, version, ttlSec: ttl, resyncMs: resync * 1000, connection });
    logAgent(agent, log);
    const engine = opts.engine === false ? undefined : new Engine({ client, machineId: identity.id, keys, leaseTtlSeconds: ttl });
    // rollouts are carried forward by the engine leader, with the same client and keys
    const rollouts = engine && new RolloutController({ client, keys, engine, connection });
    if (engine) logEngine(engine, log);
    if (rollouts) logRollouts(rollouts, log);
    if (metrics) {
      metrics.watchAgent(agent);
      if (engine) metrics.watchEngine(engine);
      if (rollouts) metrics.watchRollouts(rollouts);
      endpoint = await serveMetricsLogged(metricsAt, metrics.registry, log);
    }

    log.info({ machine: identity.id, ip: identity.ip, metadata: identity.metadata, endpoints: connection.endpoints, prefix: connection.prefix }, 'agent starting');
    agent.start();
    engine?.start();
    rollouts?.start();
    await waitForStop(opts.signal, log);
    log.info({ purge: Boolean(opts.purgeOnExit) }, 'agent stopping');
    await rollouts?.stop();
    await engine?.stop();
    await agent.stop({ purge: opts.purgeOnExit });
    log.info('agent stopped');
  } finally {
    await endpoint?.close();
    client?.close();
    await systemd.close().catch(() => undefined);
    log.flush?.();
  }
}
