/** fleetx secret set|rm|list: values in etcd that only the agents may read (src/secrets). */
import type { Command } from 'commander';
import type { Io } from '../io.js';
import { withRegistry } from '../context.js';
import { globalFlags } from './flags.js';
import { actor } from './units.js';

export function registerSecretCommands(program: Command, io: Io): void {
  const secret = program
    .command('secret')
    .description('store secrets that units get as environment variables (values never on the command line; see src/secrets/README.md)');

  secret
    .command('set')
    .description('store a new version of a secret; the value comes from stdin or --from-file, never an argument')
    .argument('<name>', 'secret name, e.g. dd-api-key')
    .option('--from-file <path>', 'read the value from this file (one line; a final newline is dropped)')
    .action(async (name: string, o: { fromFile?: string }, c: Command) => {
      const { secretSetCommand } = await import('../commands/secret.js');
      await withRegistry(globalFlags(c), io, (ctx) => secretSetCommand({ name, fromFile: o.fromFile, by: actor(io), now: new Date() }, ctx));
    });

  secret
    .command('rm')
    .description('remove a secret; units that name it fail to start from then on')
    .argument('<name>')
    .action(async (name: string, _o, c: Command) => {
      const { secretRmCommand } = await import('../commands/secret.js');
      await withRegistry(globalFlags(c), io, (ctx) => secretRmCommand({ name }, ctx));
    });

  secret
    .command('list')
    .description('list secrets: names, versions, when and by whom (never values)')
    .option('--no-legend', 'do not print the header line')
    .action(async (o: { legend: boolean }, c: Command) => {
      const { secretListCommand } = await import('../commands/secret.js');
      await withRegistry(globalFlags(c), io, (ctx) => secretListCommand({ legend: o.legend }, ctx));
    });
}
