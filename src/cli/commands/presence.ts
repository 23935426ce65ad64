/** `fleetx presence --service NAME`: flags → options of the presence daemon (src/daemon/presence.ts). */
import { runPresenceDaemon } from '../../daemon/presence.js';
import { connectionFrom } from '../context.js';
import type { Io } from '../io.js';
import type { GlobalFlags } from '../program/flags.js';

export interface PresenceCommandOptions extends Partial<Omit<GlobalFlags, 'output'>> {
  service: string;
  /** TTL of the lease presence statuses live under, seconds (default 10) */
  ttl?: number;
  /** Prometheus endpoint: HOST:PORT, :PORT or off (default off; not FLEETX_METRICS_LISTEN, which the host's agent uses) */
  metricsListen?: string;
  logLevel?: string;
  /** ends the syncer when aborted; default: SIGTERM/SIGINT of this process */
  signal?: AbortSignal;
}

/** Runs until the signal; see runPresenceDaemon for what it throws. */
export async function presenceCommand(opts: PresenceCommandOptions, io: Io): Promise<void> {
  await runPresenceDaemon({
    connection: await connectionFrom({ ...opts, output: 'text' }, io),
    service: opts.service,
    ttlSec: opts.ttl,
    metricsListen: opts.metricsListen,
    logLevel: opts.logLevel,
    writeLog: (line) => io.stderr(line),
    signal: opts.signal,
  });
}
