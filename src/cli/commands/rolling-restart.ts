/** rolling-restart: every instance of a template restarted a batch at a time, on the body it runs. */
import { startRestart, type RestartRequest } from '../../deploy/deploy.js';
import { applyContext } from '../../deploy/context.js';
import type { DeployContext } from '../context.js';
import { reporting, type FollowFlags } from '../follow/started.js';

export interface RollingRestartOptions extends FollowFlags {
  target: string;
  overrides: RestartRequest['overrides'];
}

export async function rollingRestartCommand(opts: RollingRestartOptions, ctx: DeployContext): Promise<void> {
  await reporting('rolling-restart', opts, ctx, async (run) => {
    const rollout = await run.afterAbortedLock(() => startRestart(ctx.store, { target: opts.target, overrides: opts.overrides }, applyContext(ctx.io.env)));
    run.say(`Rolling restart of ${Object.keys(rollout.instances).length} instance(s) of ${rollout.template}`);
    await run.follow(rollout);
  });
}
