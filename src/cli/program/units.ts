/** fleetctl's unit commands, under the same names and flags. */
import { userInfo, hostname } from 'node:os';
import { Option, type Command } from 'commander';
import type { Io } from '../io.js';
import { withRegistry } from '../context.js';
import type { TargetState } from '../../registry/records.js';
import type { BlockOptions } from '../units/wait.js';
import { globalFlags, intOption } from './flags.js';

const blockingOptions = (cmd: Command): Command =>
  cmd
    .option('--block-attempts <n>', 'check the reported state at most n times, about a second apart (0: no limit)', intOption('--block-attempts'), 0)
    .option('--no-block', 'record the target state and return at once');

const listOptions = (cmd: Command): Command =>
  cmd
    .option('--fields <list>', 'columns to print, comma-separated')
    .option('--full', 'do not shorten machine IDs and hashes', false)
    .option('-l', 'same as --full')
    .option('--no-legend', 'do not print the header line');

function blockOf(o: { block: boolean; blockAttempts: number }): BlockOptions {
  return { block: o.block, attempts: o.blockAttempts };
}

/** Who is acting, for the audit fields of unit records. CI sets BUILD_TAG. */
export function actor(io: Io): string {
  const who = io.env.FLEETX_USER ?? safeUser();
  const build = io.env.BUILD_TAG ? ` (${io.env.BUILD_TAG})` : '';
  return `${who}@${hostname()}${build}`;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

export function registerUnitCommands(program: Command, io: Io): void {
  const submitLike = (name: string, target: TargetState, description: string, blocking: boolean) => {
    let cmd = program
      .command(name)
      .description(description)
      .argument('<units...>', 'unit files, or names of submitted units / template instances')
      .option('--replace', 'replace a submitted unit whose contents differ', false);
    if (blocking) cmd = blockingOptions(cmd);
    cmd.action(async (units: string[], o, c: Command) => {
      const block = blocking ? blockOf(o) : { block: false, attempts: 0 };
      await withRegistry(globalFlags(c), io, async (ctx) => {
        // The command's first etcd call authenticates (etcd's bcrypt check,
        // tens of ms): it goes out before the command's own code loads.
        const reading = ctx.registry.readUnits();
        reading.catch(() => undefined); // awaited (and reported) by submitCommand
        const { submitCommand } = await import('../commands/submit.js');
        await submitCommand({ units, target, replace: o.replace, block, user: actor(io), now: () => new Date() }, ctx, reading);
      });
    });
  };
  submitLike('submit', 'inactive', 'upload units to the registry without scheduling them', false);
  submitLike('load', 'loaded', 'schedule units to machines and load them, without starting', true);
  submitLike('start', 'launched', 'schedule, load and start units', true);

  const targetLike = (action: 'stop' | 'unload' | 'destroy' | 'restart', description: string, blocking: boolean) => {
    let cmd = program.command(action).description(description).argument('<units...>', 'unit names or globs (quote them)');
    if (blocking) cmd = blockingOptions(cmd);
    cmd.action(async (units: string[], o, c: Command) => {
      const { targetCommand } = await import('../commands/target.js');
      await withRegistry(globalFlags(c), io, (ctx) =>
        targetCommand({ action, units, block: blocking ? blockOf(o) : { block: false, attempts: 0 }, now: () => new Date() }, ctx),
      );
    });
  };
  targetLike('stop', 'stop units; they stay loaded on their machines', true);
  targetLike('unload', 'unload units from their machines; they stay submitted', true);
  targetLike('destroy', 'remove units from the cluster and the registry', false);
  targetLike('restart', 'stop and start units one at a time, waiting for each', true);

  program
    .command('cat')
    .description('print a submitted unit')
    .argument('<unit>')
    .action(async (unit: string, _o, c: Command) => {
      const { catCommand } = await import('../commands/cat.js');
      await withRegistry(globalFlags(c), io, (ctx) => catCommand({ unit }, ctx));
    });

  listOptions(program.command('list-units').description('list units as their machines report them')).action(async (o, c: Command) => {
    const { listUnitsCommand } = await import('../commands/list.js');
    await withRegistry(globalFlags(c), io, (ctx) => listUnitsCommand({ fields: o.fields, full: o.full || o.l, legend: o.legend }, ctx));
  });
  listOptions(program.command('list-unit-files').description('list submitted units, their target state and placement')).action(
    async (o, c: Command) => {
      const { listUnitFilesCommand } = await import('../commands/list.js');
      await withRegistry(globalFlags(c), io, (ctx) => listUnitFilesCommand({ fields: o.fields, full: o.full || o.l, legend: o.legend }, ctx));
    },
  );
  void Option;
}
