/** What a command that started a rollout (deploy, undo, rolling-restart) does next. */
import type { RolloutRecord } from '../../rollout/types.js';
import type { DeployContext } from '../context.js';
import { describe } from './events.js';
import { followToEnd, signalOnInterrupt } from './follow.js';
import { pickRenderer } from './render.js';

export interface FollowFlags {
  detach: boolean;
  timeoutMs?: number;
}

/** After starting a rollout: follow it to its end, or say how to follow it later. */
export async function followOrDetach(rollout: RolloutRecord, opts: FollowFlags, ctx: DeployContext): Promise<void> {
  if (opts.detach) {
    if (ctx.output === 'json') ctx.io.stdout(JSON.stringify({ service: rollout.service, rollout: rollout.id, state: rollout.state }));
    else ctx.io.stdout(`Started the ${describe(rollout)} (${rollout.id}). Follow it with: fleetx rollout status ${rollout.service} --follow`);
    return;
  }
  const interrupt = signalOnInterrupt();
  try {
    await followToEnd(ctx.store, {
      service: rollout.service,
      id: rollout.id,
      renderer: pickRenderer(ctx.io, ctx.output),
      signal: interrupt.signal,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    });
  } finally {
    interrupt.dispose();
  }
}
