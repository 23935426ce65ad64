/** Commands that work on files and the local machine: render, cloud-config, verify, sandbox, agent. */
import type { Command } from 'commander';
import type { Io } from '../io.js';
import { collect, globalFlags, intOption } from './flags.js';

export function registerToolCommands(program: Command, io: Io): void {
  program
    .command('render')
    .description('render a unit template with values and print the unit')
    .argument('<template>', 'template name (app, app@.service) or path to a .hbs file')
    .option('-f, --values <file>', 'YAML file of values (repeatable)', collect, [])
    .option('--set <key=value>', 'set one value, dot paths allowed (repeatable)', collect, [])
    .option('--out <file>', 'write the unit to a file instead of stdout')
    .action(async (template: string, o, cmd: Command) => {
      const { renderCommand } = await import('../commands/render.js');
      await renderCommand({ template, files: o.values, sets: o.set, output: o.out }, io);
      void cmd;
    });

  program
    .command('cloud-config')
    .description('user-data that turns a fresh Debian 12 host into a fleetx host (see cloud-config/README.md)')
    .command('render')
    .description('render a role\'s #cloud-config user-data and print it')
    .requiredOption('--role <role>', 'role template in cloud-config/ (web, worker)')
    .option('-f, --values <file>', 'YAML file of values, merged over the role\'s own (repeatable)', collect, [])
    .option('--set <key=value>', 'set one value, dot paths allowed (repeatable)', collect, [])
    .option('--out <file>', 'write the user-data to a file (mode 0600) instead of stdout')
    .action(async (o) => {
      const { cloudConfigRenderCommand } = await import('../commands/cloud-config.js');
      await cloudConfigRenderCommand({ role: o.role, files: o.values, sets: o.set, output: o.out }, io);
    });

  program
    .command('verify')
    .description('check unit files: syntax, names, [X-Fleet] options, and systemd-analyze verify')
    .argument('<files...>', 'unit files')
    .option('--no-systemd-analyze', 'skip systemd-analyze verify')
    .action(async (files: string[], o, cmd: Command) => {
      const { verifyCommand } = await import('../commands/verify.js');
      await verifyCommand({ files, systemdAnalyze: o.systemdAnalyze, output: globalFlags(cmd).output }, io);
    });

  program
    .command('agent')
    .description('run the host agent: registers this machine and makes systemd match its schedule (run by systemd)')
    .option('--machine-id <id>', 'machine ID (default: /etc/machine-id)')
    .option('--machine-id-file <path>', 'file holding the machine ID (default /etc/machine-id)')
    .option('--resync <seconds>', 'safety-net pass that re-reads systemd (the schedule in etcd is watched, not polled)', intOption('--resync'), 60)
    .option('--ip <address>', 'address other machines and load balancers reach this one at (default: first non-loopback IPv4)')
    .option('--metadata <k=v,...>', 'machine metadata (repeatable)', collect, [])
    .option('--config <file>', 'YAML file with ip and metadata')
    .option('--ttl <seconds>', 'lease TTL of this machine\'s presence', intOption('--ttl'), 10)
    .option('--unit-dir <dir>', 'where unit files are written', '/run/systemd/system')
    .option('--purge-on-exit', 'on SIGTERM stop and remove this machine\'s units so they move elsewhere (fleet\'s behaviour)', false)
    .option('--no-engine', 'do not take part in the engine leader election')
    .option('--metrics-listen <host:port>', 'Prometheus /metrics endpoint: HOST:PORT, :PORT (every address) or off (default FLEETX_METRICS_LISTEN, else 127.0.0.1:9170)')
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (o, c: Command) => {
      const { agentCommand } = await import('../commands/agent.js');
      const g = globalFlags(c);
      await agentCommand({ ...g, ...o, engine: o.engine }, io);
    });

  const sandbox = program.command('sandbox').description('a local cluster of test hosts with real systemd on this machine (root)');
  sandbox
    .command('up')
    .description('create or repair the sandbox (idempotent)')
    .option('--hosts <n>', 'number of hosts', intOption('--hosts'), 3)
    .option('--etcd-members <n>', 'etcd members, each its own process and data dir (default 1; 3 survives the loss of one)', intOption('--etcd-members'))
    .option('--state-dir <dir>', 'state directory (default /var/lib/fleetx/sandbox, or FLEETX_SANDBOX_DIR)')
    .option('--demo', 'also run the demo: HAProxy on the bridge address in front of the demo app containers (services/app.yaml, units/app@.service.hbs), kept in line by the presence syncer', false)
    .action(async (o, c: Command) => {
      const { sandboxCommand } = await import('../commands/sandbox.js');
      await sandboxCommand({ action: 'up', hosts: o.hosts, etcdMembers: o.etcdMembers, stateDir: o.stateDir, demo: o.demo, output: globalFlags(c).output }, io);
    });
  for (const action of ['down', 'status'] as const) {
    sandbox
      .command(action)
      .description(action === 'down' ? 'remove everything the sandbox made' : 'show hosts, addresses and endpoints')
      .option('--state-dir <dir>', 'state directory (default /var/lib/fleetx/sandbox, or FLEETX_SANDBOX_DIR)')
      .action(async (o, c: Command) => {
        const { sandboxCommand } = await import('../commands/sandbox.js');
        await sandboxCommand({ action, stateDir: o.stateDir, output: globalFlags(c).output }, io);
      });
  }
}
