/** `fleetx agent`: flags → options of the host daemon (src/daemon/host.ts). */
import { runHostDaemon } from '../../daemon/host.js';
import { connectionFrom } from '../context.js';
import type { Io } from '../io.js';
import type { GlobalFlags } from '../program/flags.js';

export interface AgentCommandOptions extends Partial<Omit<GlobalFlags, 'output'>> {
  machineId?: string;
  machineIdFile?: string;
  ip?: string;
  /** `k=v,k2=v2`, repeatable */
  metadata?: string[];
  /** YAML config file (ip, metadata) */
  config?: string;
  /** lease TTL, seconds (default 10) */
  ttl?: number;
  /** where unit files go (default /run/systemd/system) */
  unitDir?: string;
  /** on SIGTERM/SIGINT, stop and remove this host's units and revoke the lease */
  purgeOnExit?: boolean;
  /** run the leader-elected engine in this process too (default true) */
  engine?: boolean;
  /** safety-net resync interval, seconds (default 60) */
  resync?: number;
  /** Prometheus endpoint: HOST:PORT, :PORT or off (default FLEETX_METRICS_LISTEN, else 127.0.0.1:9170) */
  metricsListen?: string;
  /** log level (default info) */
  logLevel?: string;
  /** ends the agent when aborted; default: SIGTERM/SIGINT of this process */
  signal?: AbortSignal;
}

/** Runs until the signal; see runHostDaemon for what it throws. */
export async function agentCommand(opts: AgentCommandOptions, io: Io): Promise<void> {
  await runHostDaemon({
    connection: await connectionFrom({ ...opts, output: 'text' }, io),
    identity: { machineId: opts.machineId, machineIdFile: opts.machineIdFile, ip: opts.ip, metadata: opts.metadata, configFile: opts.config },
    ttlSec: opts.ttl,
    resyncSec: opts.resync,
    unitDir: opts.unitDir,
    purgeOnExit: opts.purgeOnExit,
    engine: opts.engine,
    metricsListen: opts.metricsListen ?? io.env.FLEETX_METRICS_LISTEN,
    logLevel: opts.logLevel,
    writeLog: (line) => io.stderr(line),
    signal: opts.signal,
  });
}
