/** Services and rollouts: deploy, plan, rolling-restart, rollout status|pause|resume|abort|history|undo. */
import { Option, type Command } from 'commander';
import { usageError } from '../../errors/errors.js';
import { parseDuration } from '../../service/duration.js';
import type { Io } from '../io.js';
import { connectionFrom, type DeployContext } from '../context.js';
import { collect, globalFlags, intOption } from './flags.js';

/** Opens a DeployStore for one command (loaded lazily, like every command) and closes it after. */
async function withDeploy<T>(c: Command, io: Io, fn: (ctx: DeployContext) => Promise<T>): Promise<T> {
  const flags = globalFlags(c);
  const connection = await connectionFrom(flags, io);
  const { openDeployStore } = await import('../../deploy/open.js');
  const { store, close } = openDeployStore(connection);
  try {
    return await fn({ store, io, output: flags.output });
  } finally {
    close();
  }
}

function durationOption(name: string) {
  return (value: string): number => {
    const ms = parseDuration(value);
    if (ms === undefined) throw usageError(`${name} must be a duration like 500ms, 30s or 5m, got "${value}"`);
    return ms;
  };
}

/** Flags of the commands that start a rollout and follow it (deploy, rolling-restart, rollout undo); see follow/started.ts. */
const followOptions = (cmd: Command): Command =>
  cmd
    .option('--detach', 'start the rollout and return at once', false)
    .option('--timeout <duration>', 'stop following after this long, exit 9; the rollout continues (default 30m, or FLEETX_TIMEOUT; 0: no limit)', durationOption('--timeout'))
    .addOption(
      new Option('--on-abort <action>', 'when this command is stopped (SIGTERM, SIGINT, SIGHUP) while following: abort the rollout, pause it, or detach from it')
        .choices(['abort', 'pause', 'detach'])
        .default('abort'),
    )
    .option('--report <file>', 'write the final report: FILE.xml as JUnit XML, any other name as JSON (repeatable)', collect, []);

const followFlags = (o: Record<string, unknown>) => ({
  detach: Boolean(o.detach),
  timeoutMs: o.timeout as number | undefined,
  onAbort: o.onAbort as 'abort' | 'pause' | 'detach',
  reports: o.report as string[],
});

export function registerRolloutCommands(program: Command, io: Io): void {
  followOptions(
    program
      .command('deploy')
      .description('render a service\'s unit, store it as a new revision and roll its instances onto it')
      .argument('[service]', 'stored service (app, app@, app@.service) or one in ./services/NAME.yaml')
      .option('-f, --file <path>', 'service file (services/NAME.yaml)')
      .option('--set <key=value>', 'override one value, dot paths allowed (repeatable)', collect, [])
      .option('--dry-run', 'print the unit diff and the instances that would restart; change nothing', false)
      .option('--no-auto-revert', 'on failure leave the failed instance out instead of going back'),
  ).action(async (service: string | undefined, o, c: Command) => {
    const { deployCommand } = await import('../commands/deploy.js');
    const autoRevert = c.getOptionValueSource('autoRevert') === 'cli' ? Boolean(o.autoRevert) : undefined;
    await withDeploy(c, io, (ctx) =>
      deployCommand({ name: service, file: o.file, sets: o.set, dryRun: o.dryRun, ...followFlags(o), autoRevert }, ctx),
    );
  });

  program
    .command('plan')
    .description('show what fleetx deploy would change (unit diff, instances to restart or create); change nothing')
    .argument('[service]', 'stored service (app, app@, app@.service) or one in ./services/NAME.yaml')
    .option('-f, --file <path>', 'service file (services/NAME.yaml)')
    .option('--set <key=value>', 'override one value (repeatable)', collect, [])
    .option('--detailed-exitcode', 'exit 0 when nothing would change, 2 when something would, 1 on any error (as terraform plan)', false)
    .action(async (service: string | undefined, o, c: Command) => {
      const { planCommand } = await import('../commands/deploy.js');
      await withDeploy(c, io, (ctx) => planCommand({ name: service, file: o.file, sets: o.set, detailedExitcode: o.detailedExitcode }, ctx));
    });

  followOptions(
    program
      .command('rolling-restart')
      .description('restart every instance of a template a batch at a time, keeping the service available')
      .argument('<template>', 'app@, app@.service, or a service name')
      .option('--max-unavailable <n>', 'instances down at once', intOption('--max-unavailable'))
      .option('--min-healthy <duration>', 'time an instance must stay healthy before the next goes', durationOption('--min-healthy'))
      .option('--deadline <duration>', 'longest time from an instance\'s start to healthy', durationOption('--deadline')),
  ).action(async (target: string, o, c: Command) => {
    if (o.maxUnavailable === 0) throw usageError('--max-unavailable must be at least 1');
    const { rollingRestartCommand } = await import('../commands/rolling-restart.js');
    const overrides = {
      ...(o.maxUnavailable !== undefined ? { maxUnavailable: o.maxUnavailable as number } : {}),
      ...(o.minHealthy !== undefined ? { minHealthyMs: o.minHealthy as number } : {}),
      ...(o.deadline !== undefined ? { deadlineMs: o.deadline as number } : {}),
    };
    await withDeploy(c, io, (ctx) => rollingRestartCommand({ target, overrides, ...followFlags(o) }, ctx));
  });

  const rollout = program.command('rollout').description('running and past rollouts: status, pause, resume, abort, history, undo');
  rollout
    .command('status')
    .description('the running rollout of a service (all running rollouts without one)')
    .argument('[service]')
    .option('--follow', 'show progress until the rollout ends; exit 0 if it succeeded', false)
    .option('--timeout <duration>', 'stop following after this long', durationOption('--timeout'))
    .action(async (service: string | undefined, o, c: Command) => {
      if (o.follow && !service) throw usageError('--follow needs a service: fleetx rollout status SVC --follow');
      const { rolloutStatusCommand } = await import('../commands/rollout.js');
      await withDeploy(c, io, (ctx) => rolloutStatusCommand({ service, follow: o.follow, timeoutMs: o.timeout }, ctx));
    });
  for (const command of ['pause', 'resume', 'abort'] as const) {
    const help = {
      pause: 'let instances in flight finish and start no new one',
      resume: 'continue a paused rollout',
      abort: 'let instances in flight finish, then end the rollout as aborted',
    }[command];
    rollout
      .command(command)
      .description(help)
      .argument('<service>')
      .action(async (service: string, _o, c: Command) => {
        const { rolloutControlCommand } = await import('../commands/rollout.js');
        await withDeploy(c, io, (ctx) => rolloutControlCommand({ service, command }, ctx));
      });
  }
  rollout
    .command('history')
    .description('finished rollouts of a service')
    .argument('<service>')
    .action(async (service: string, _o, c: Command) => {
      const { rolloutHistoryCommand } = await import('../commands/rollout.js');
      await withDeploy(c, io, (ctx) => rolloutHistoryCommand({ service }, ctx));
    });
  followOptions(
    rollout
      .command('undo')
      .description('roll back to the previous healthy revision (or --to-revision N), as a new revision')
      .argument('<service>')
      .option('--to-revision <n>', 'revision to go back to', intOption('--to-revision'))
      .option('--dry-run', 'print the plan; change nothing', false),
  ).action(async (service: string, o, c: Command) => {
    const { undoCommand } = await import('../commands/deploy.js');
    await withDeploy(c, io, (ctx) => undoCommand({ service, toRevision: o.toRevision, dryRun: o.dryRun, ...followFlags(o) }, ctx));
  });
}
