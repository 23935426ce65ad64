/**
 * fleetx rollout status|pause|resume|abort|history|undo. Users never write
 * the rollout record (the controller owns it): pause / resume / abort
 * write {p}/rollout-control/{svc}, which the controller reads.
 */
import type { RolloutControl, RolloutRecord } from '../../rollout/types.js';
import { notFoundError } from '../../errors/errors.js';
import { describeHolder, holderFrom } from '../../deploy/holder.js';
import type { DeployContext } from '../context.js';
import { formatTable } from '../table.js';
import { describe, shortTime, ttyFrame } from '../follow/events.js';
import { followToEnd, NO_LEADER_HINT, signalOnInterrupt } from '../follow/follow.js';
import { pickRenderer, showNotice } from '../follow/render.js';

export interface StatusOptions {
  service?: string;
  follow: boolean;
  timeoutMs?: number;
}

export async function rolloutStatusCommand(opts: StatusOptions, ctx: DeployContext): Promise<void> {
  const { store, io } = ctx;
  if (opts.follow) {
    if (!opts.service) throw notFoundError('--follow needs a service: fleetx rollout status SVC --follow');
    const interrupt = signalOnInterrupt();
    try {
      await followToEnd(store, {
        service: opts.service,
        renderer: pickRenderer(io, ctx.output),
        signal: interrupt.signal,
        ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
        notice: (notice, message) => showNotice(io, ctx.output, { time: new Date().toISOString(), service: opts.service!, rollout: '', type: 'notice', notice, message }),
      });
    } finally {
      interrupt.dispose();
    }
    return;
  }
  if (opts.service) {
    const r = await store.getRollout(opts.service);
    const shown = r ?? (await store.listHistory(opts.service)).at(-1);
    if (!shown) throw notFoundError(`no rollout of ${opts.service} is running or recorded`);
    if (ctx.output === 'json') io.stdout(JSON.stringify({ schema: 'fleetx/rollout-status/v1', running: r !== undefined, rollout: shown }));
    else io.stdout([...(r ? [] : ['No rollout running; the last one:']), ...ttyFrame(shown, Date.now()), `  by ${holderText(shown)} since ${shortTime(shown.createdAt)}`].join('\n'));
    return;
  }
  const all = await store.listRollouts();
  if (ctx.output === 'json') return io.stdout(JSON.stringify({ schema: 'fleetx/rollouts/v1', rollouts: all }));
  if (all.length === 0) return io.stdout('No rollouts running');
  io.stdout(formatTable(all.map(summaryRow), { fields: ['service', 'kind', 'revision', 'state', 'progress', 'holder', 'started'], legend: true }));
}

export interface ControlOptions {
  service: string;
  command: RolloutControl['command'];
}

export async function rolloutControlCommand(opts: ControlOptions, ctx: DeployContext): Promise<void> {
  const control: RolloutControl = { command: opts.command, by: describeHolder(holderFrom(ctx.io.env)), at: new Date().toISOString() };
  const r = await ctx.store.writeControl(opts.service, control);
  // Only the engine leader acts on a control record: without one, say so at once instead of leaving the caller waiting.
  const leader = await ctx.store.engineLeader();
  if (leader === undefined) ctx.io.stderr(`Warning: recorded, but no engine leader is alive to act on it: ${NO_LEADER_HINT}`);
  const what: Record<RolloutControl['command'], string> = {
    pause: 'will pause: instances in flight finish, no new one starts',
    resume: 'will resume',
    abort: 'will be aborted: instances in flight finish, then it ends',
  };
  if (ctx.output === 'json') ctx.io.stdout(JSON.stringify({ schema: 'fleetx/rollout-control/v1', service: opts.service, rollout: r.id, control, engineLeader: leader !== undefined }));
  else ctx.io.stdout(`The ${describe(r)} ${what[opts.command]}. Follow it with: fleetx rollout status ${opts.service} --follow`);
}

export async function rolloutHistoryCommand(opts: { service: string }, ctx: DeployContext): Promise<void> {
  const list = await ctx.store.listHistory(opts.service);
  if (ctx.output === 'json') return ctx.io.stdout(JSON.stringify({ schema: 'fleetx/rollout-history/v1', service: opts.service, rollouts: list.map(historyRow) }));
  if (list.length === 0) return ctx.io.stdout(`No finished rollouts of ${opts.service}`);
  ctx.io.stdout(formatTable(list.map(historyRow).map((r) => ({ ...r, commit: r.commit?.slice(0, 12) ?? '-', started: shortTime(r.started), finished: r.finished ? shortTime(r.finished) : '-' })), {
    fields: ['id', 'kind', 'revision', 'state', 'holder', 'commit', 'started', 'finished'],
    legend: true,
  }));
}

function historyRow(r: RolloutRecord) {
  return {
    id: r.id,
    kind: r.kind,
    revision: revisionText(r),
    state: r.state,
    holder: holderText(r),
    ...(r.holder.build ? { build: r.holder.build } : {}),
    ...(r.holder.url ? { url: r.holder.url } : {}),
    ...(r.holder.commit ? { commit: r.holder.commit } : {}),
    started: r.createdAt,
    finished: r.finishedAt ?? '',
    ...(r.message ? { message: r.message } : {}),
  };
}

function summaryRow(r: RolloutRecord): Record<string, string> {
  // surge instances come and go; progress counts the service's own
  const all = Object.values(r.instances).filter((i) => !i.surge);
  return {
    service: r.service,
    kind: r.kind,
    revision: revisionText(r),
    state: r.state,
    progress: `${all.filter((i) => i.phase === 'done').length}/${all.length}`,
    holder: holderText(r),
    started: shortTime(r.createdAt),
  };
}

function revisionText(r: RolloutRecord): string {
  const to = r.toRevision !== undefined ? String(r.toRevision) : '-';
  return r.fromRevision !== undefined && r.fromRevision !== r.toRevision ? `${r.fromRevision}->${to}` : to;
}

const holderText = (r: RolloutRecord) => `${r.holder.user}@${r.holder.host}${r.holder.build ? ` (${r.holder.build})` : ''}`;
