/** The load-balancer presence syncer: `fleetx presence --service NAME`. */
import type { Command } from 'commander';
import type { Io } from '../io.js';
import { globalFlags, intOption } from './flags.js';

export function registerPresenceCommands(program: Command, io: Io): void {
  program
    .command('presence')
    .description('keep a load balancer in line with health and rollout holds of one service (run beside the LB by systemd)')
    .requiredOption('--service <name>', 'service whose instances this syncer puts in and out of the LB')
    .option('--ttl <seconds>', 'lease TTL of the presence statuses this syncer reports', intOption('--ttl'), 10)
    .option('--metrics-listen <host:port>', 'Prometheus /metrics endpoint (fleetx_presence_changes_total, etcd requests): HOST:PORT, :PORT or off', 'off')
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (o, c: Command) => {
      const { presenceCommand } = await import('../commands/presence.js');
      const g = globalFlags(c);
      await presenceCommand({ ...g, service: o.service, ttl: o.ttl, metricsListen: o.metricsListen, logLevel: o.logLevel }, io);
    });
}
