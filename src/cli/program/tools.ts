/** Commands that work on files and the local machine: render, verify, sandbox, agent. */
import type { Command } from 'commander';
import type { Io } from '../io.js';
import { collect, globalFlags } from './flags.js';

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
    .command('verify')
    .description('check unit files: syntax, names, [X-Fleet] options, and systemd-analyze verify')
    .argument('<files...>', 'unit files')
    .option('--no-systemd-analyze', 'skip systemd-analyze verify')
    .action(async (files: string[], o, cmd: Command) => {
      const { verifyCommand } = await import('../commands/verify.js');
      await verifyCommand({ files, systemdAnalyze: o.systemdAnalyze, output: globalFlags(cmd).output }, io);
    });
}
