/** Machine-level commands: list-machines, set-metadata, why. */
import type { Command } from 'commander';
import type { Io } from '../io.js';
import { withRegistry } from '../context.js';
import { globalFlags, intOption } from './flags.js';

/**
 * fleetctl's SSH flags are global, as in fleetctl: commander reads a
 * program option before the command (`fleetx --tunnel b status web`) and
 * after it (`fleetx status --tunnel b web`). `--strict-host-key-checking=false`
 * (Go's form) is rewritten to the negation by fleetctlArgv (main.ts).
 */
export const sshOptions = (cmd: Command): Command =>
  cmd
    .option('--tunnel <host>', 'reach machines through this SSH jump host (user@host[:port])')
    .option('--known-hosts-file <path>', 'known-hosts file to check machines\' host keys against')
    .option('--strict-host-key-checking', 'check machines\' host keys (default; =false accepts unknown keys, not for production)')
    .option('--no-strict-host-key-checking', 'accept unknown host keys (not for production)')
    .option('--ssh-username <user>', 'user to log in as on machines (default root)')
    .option('--ssh-port <port>', 'SSH port of machines (default 22)')
    .option('--identity-file <path>', 'SSH private key to use');

function remoteFlags(c: Command) {
  const o = c.optsWithGlobals() as Record<string, unknown>;
  return {
    tunnel: o.tunnel as string | undefined,
    knownHostsFile: o.knownHostsFile as string | undefined,
    strictHostKeyChecking: o.strictHostKeyChecking !== false,
    sshUsername: o.sshUsername as string | undefined,
    sshPort: o.sshPort as string | undefined,
    identityFile: o.identityFile as string | undefined,
  };
}

export function registerClusterCommands(program: Command, io: Io): void {
  sshOptions(program);
  program
    .command('list-machines')
    .description('list the machines whose agents are alive')
    .option('--fields <list>', 'columns to print, comma-separated')
    .option('--full', 'do not shorten machine IDs', false)
    .option('-l', 'same as --full')
    .option('--no-legend', 'do not print the header line')
    .action(async (o, c: Command) => {
      const { listMachinesCommand } = await import('../commands/machines.js');
      await withRegistry(globalFlags(c), io, (ctx) => listMachinesCommand({ fields: o.fields, full: o.full || o.l, legend: o.legend }, ctx));
    });

  program
    .command('set-metadata')
    .description('set metadata of a machine (key= removes a key); the scheduler re-checks placements')
    .argument('<machine>', 'machine ID or a unique prefix of it')
    .argument('<pairs...>', 'key=value pairs')
    .action(async (machine: string, pairs: string[], _o, c: Command) => {
      const { setMetadataCommand } = await import('../commands/machines.js');
      await withRegistry(globalFlags(c), io, (ctx) => setMetadataCommand({ machine, pairs }, ctx));
    });

  program
    .command('status')
    .description('show systemctl status of units on their machines (SSH flags: see fleetx --help)')
    .argument('<units...>')
    .action(async (units: string[], _o, c: Command) => {
      const { statusCommand } = await import('../commands/remote.js');
      await withRegistry(globalFlags(c), io, (ctx) => statusCommand({ units, flags: remoteFlags(c) }, ctx));
    });

  program
    .command('journal')
    .description('show the journal of a unit on its machine (SSH flags: see fleetx --help)')
    .argument('<unit>')
    .option('-f, --follow', 'keep printing new entries', false)
    .option('--lines <n>', 'number of recent entries', intOption('--lines'), 10)
    .option('--sudo', 'run journalctl with sudo -n on the machine (as fleetctl journal --sudo)', false)
    .action(async (unit: string, o, c: Command) => {
      const { journalCommand } = await import('../commands/remote.js');
      await withRegistry(globalFlags(c), io, (ctx) => journalCommand({ unit, lines: o.lines, follow: o.follow, sudo: o.sudo, flags: remoteFlags(c) }, ctx));
    });

  program
    .command('ssh')
    .description('open a shell, or run a command, on a machine or the machine of a unit (SSH flags: see fleetx --help)')
    .argument('<machine-or-unit>')
    .argument('[command...]')
    .option('-A, --forward-agent', 'forward the SSH agent', false)
    .addHelpText('after', '\nPut -- before a command that has options: fleetx ssh app@1.service -- ls -l /')
    .action(async (target: string, command: string[], o, c: Command) => {
      const { sshCommand } = await import('../commands/remote.js');
      await withRegistry(globalFlags(c), io, (ctx) => sshCommand({ target, command, forwardAgent: o.forwardAgent, flags: remoteFlags(c) }, ctx));
    });

  program
    .command('why')
    .description('explain where a unit is placed, or why it cannot be')
    .argument('<unit>')
    .option('--full', 'do not shorten machine IDs', false)
    .action(async (unit: string, o, c: Command) => {
      const { whyCommand } = await import('../commands/why.js');
      await withRegistry(globalFlags(c), io, (ctx) => whyCommand({ unit, full: o.full }, ctx));
    });
}
