/**
 * deploy, plan (and deploy --dry-run), undo: render the service's unit,
 * show what would change, and unless only planning write the revision and
 * start the rollout, then follow it until it ends (or --detach).
 */
import { applyDeploy, prepareDeploy, prepareUndo } from '../../deploy/deploy.js';
import { applyContext } from '../../deploy/context.js';
import { formatPlan, type DeployInput, type DeployPlan } from '../../deploy/plan.js';
import { lockError } from '../../deploy/store.js';
import type { DeployContext } from '../context.js';
import { reporting, type FollowFlags, type RolloutRun } from '../follow/started.js';
import { EXIT, ExitStatus, withExitCode } from '../../errors/errors.js';

export interface DeployOptions extends FollowFlags {
  file?: string;
  name?: string;
  sets: string[];
  dryRun: boolean;
  /** false with --no-auto-revert; undefined keeps the service's policy */
  autoRevert?: boolean;
}

export async function deployCommand(opts: DeployOptions, ctx: DeployContext): Promise<void> {
  const prepare = () => prepareDeploy(ctx.store, { file: opts.file, name: opts.name, sets: opts.sets, cwd: ctx.io.cwd });
  if (opts.dryRun) {
    const prepared = await prepare();
    printPlan(prepared.plan, ctx);
    return warnIfLocked(prepared.plan, ctx);
  }
  await reporting('deploy', opts, ctx, (run) => apply(prepare, opts, ctx, run));
}

export interface PlanOptions {
  file?: string;
  name?: string;
  sets: string[];
  /** exit 2 when something would change, 1 on any error (terraform's contract) */
  detailedExitcode?: boolean;
}

/** `fleetx plan`: the same as deploy --dry-run. */
export async function planCommand(opts: PlanOptions, ctx: DeployContext): Promise<void> {
  let plan: DeployPlan;
  try {
    plan = (await prepareDeploy(ctx.store, { file: opts.file, name: opts.name, sets: opts.sets, cwd: ctx.io.cwd })).plan;
    printPlan(plan, ctx);
    await warnIfLocked(plan, ctx);
  } catch (e) {
    // with --detailed-exitcode 2 means "changes", so every error is 1
    throw opts.detailedExitcode ? withExitCode(e, EXIT.failed) : e;
  }
  if (opts.detailedExitcode && hasChanges(plan)) throw new ExitStatus(2);
}

/** Anything a deploy would write: a revision, units, a rollout, or only new service settings. */
export const hasChanges = (plan: DeployPlan): boolean => !plan.nothingToDo || plan.specChanged;

/** A plan made while a rollout runs would be refused: say so (stderr, so the plan stays clean). */
async function warnIfLocked(plan: DeployPlan, ctx: DeployContext): Promise<void> {
  const running = await ctx.store.getRollout(plan.service);
  if (running && !plan.nothingToDo) ctx.io.stderr(`Note: ${lockError(running).message}`);
}

export interface UndoOptions extends FollowFlags {
  service: string;
  toRevision?: number;
  dryRun: boolean;
}

export async function undoCommand(opts: UndoOptions, ctx: DeployContext): Promise<void> {
  const prepare = () => prepareUndo(ctx.store, opts.service, opts.toRevision);
  if (opts.dryRun) return printPlan((await prepare()).plan, ctx);
  // Going back is the safe direction: no auto-revert of an undo.
  await reporting('undo', opts, ctx, (run) => apply(prepare, { ...opts, autoRevert: false }, ctx, run));
}

type Prepared = { input: DeployInput; plan: DeployPlan };

/** Plans (again, after waiting for an aborted lock holder: what it read may have changed), stores, follows. */
async function apply(prepare: () => Promise<Prepared>, opts: FollowFlags & { autoRevert?: boolean }, ctx: DeployContext, run: RolloutRun): Promise<void> {
  const { plan, rollout } = await run.afterAbortedLock(async () => {
    const prepared = await prepare();
    return { plan: prepared.plan, rollout: await applyDeploy(ctx.store, prepared, applyContext(ctx.io.env, opts.autoRevert)) };
  });
  if (!rollout) {
    return run.unchanged(plan.service, plan.toRevision, `${plan.service} is already at revision ${plan.toRevision}${plan.specChanged ? '; its service settings were updated' : ''}`);
  }
  run.say(`Revision ${plan.toRevision} of ${plan.service}${plan.newRevision ? ' stored' : ''}; ${plan.create.length > 0 ? `created ${plan.create.join(', ')}; ` : ''}${plan.restart.length} instance(s) to restart`);
  await run.follow(rollout);
}

/** Schema of `plan -o json` and `deploy --dry-run -o json` (docs/CLI.md). */
export const PLAN_SCHEMA = 'fleetx/plan/v1';

function printPlan(plan: DeployPlan, ctx: DeployContext): void {
  if (ctx.output === 'json') ctx.io.stdout(JSON.stringify({ schema: PLAN_SCHEMA, changes: hasChanges(plan), ...plan }));
  else ctx.io.stdout(formatPlan(plan).join('\n'));
}
