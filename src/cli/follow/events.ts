/**
 * Pure: what changed between two versions of a rollout record, as events,
 * and how each output mode prints them. The follow loop (follow.ts) feeds
 * records in; renderers (render.ts) print; tests feed sequences directly.
 */
import { FleetxError } from '../../errors/errors.js';
import { verdictOf } from '../../rollout/verdict.js';
import type { InstancePhase, RolloutRecord, RolloutState } from '../../rollout/types.js';

/** Schema of each JSON line a followed rollout prints (docs/CLI.md). */
export const EVENT_SCHEMA = 'fleetx/rollout-event/v1';

export type FollowEvent =
  | { time: string; service: string; rollout: string; type: 'state'; state: RolloutState; kind: RolloutRecord['kind']; toRevision?: number; message?: string }
  | { time: string; service: string; rollout: string; type: 'instance'; unit: string; phase: InstancePhase; error?: string; note?: string }
  /** something the follower noticed that is not in the record, e.g. no engine leader alive */
  | { time: string; service: string; rollout: string; type: 'notice'; notice: 'no-engine-leader' | 'engine-leader-back' | 'waiting-for-lock'; message: string };

export function changes(prev: RolloutRecord | undefined, next: RolloutRecord): FollowEvent[] {
  const out: FollowEvent[] = [];
  const base = { service: next.service, rollout: next.id };
  const fresh = prev === undefined || prev.id !== next.id;
  if (fresh || prev.state !== next.state || prev.message !== next.message) {
    out.push({
      ...base,
      time: next.finishedAt ?? next.updatedAt,
      type: 'state',
      state: next.state,
      kind: next.kind,
      ...(next.toRevision !== undefined ? { toRevision: next.toRevision } : {}),
      ...(next.message !== undefined ? { message: next.message } : {}),
    });
  }
  for (const name of Object.keys(next.instances).sort()) {
    const p = next.instances[name]!;
    const before = fresh ? undefined : prev.instances[name];
    if (before && before.phase === p.phase && before.since === p.since) continue;
    out.push({ ...base, time: p.since, type: 'instance', unit: name, phase: p.phase, ...(p.error ? { error: p.error } : {}), ...(p.note ? { note: p.note } : {}) });
  }
  return out;
}

/** 2026-11-22T00:40:01.123Z -> 2026-11-22T00:40:01Z */
export const shortTime = (iso: string): string => iso.replace(/\.\d+Z$/, 'Z');

export function describe(r: Pick<RolloutRecord, 'kind' | 'toRevision' | 'service'>): string {
  if (r.kind === 'restart') return `rolling restart of ${r.service}`;
  return `${r.kind} of ${r.service} to revision ${r.toRevision ?? '?'}`;
}

/** "2026-11-22T00:40:01Z app@1.service draining" */
export function plainLine(e: FollowEvent): string {
  if (e.type === 'notice') return `${shortTime(e.time)} ${e.message}`;
  if (e.type === 'instance') {
    const extra = e.error ? `: ${e.error}` : e.note ? ` (${e.note})` : '';
    return `${shortTime(e.time)} ${e.unit} ${e.phase}${extra}`;
  }
  return `${shortTime(e.time)} ${describe(e)} ${e.state}${e.message ? `: ${e.message}` : ''}`;
}

export const jsonLine = (e: FollowEvent): string => JSON.stringify({ schema: EVENT_SCHEMA, ...e });

/** The live view of a TTY: a header and one line per instance with its phase and time in it. */
export function ttyFrame(r: RolloutRecord, nowMs: number): string[] {
  const all = Object.values(r.instances).sort((a, b) => (a.unit < b.unit ? -1 : 1));
  const regular = all.filter((i) => !i.surge);
  const done = regular.filter((i) => i.phase === 'done').length;
  const width = Math.max(0, ...all.map((i) => i.unit.length));
  const lines = [`${describe(r)}: ${r.state} (${done}/${regular.length} done)`];
  for (const i of all) {
    const secs = Math.max(0, Math.round((nowMs - Date.parse(i.since)) / 1000));
    const active = i.phase !== 'pending' && i.phase !== 'done';
    const extra = i.error ? `  ${i.error}` : '';
    const surge = i.surge ? '  (surge)' : '';
    lines.push(`  ${mark(i.phase)} ${i.unit.padEnd(width)}  ${i.phase.padEnd(8)}${active ? `  ${secs}s` : ''}${surge}${extra}`.trimEnd());
  }
  if (r.message) lines.push(`  ${r.message}`);
  return lines;
}

function mark(p: InstancePhase): string {
  return p === 'done' ? '✔' : p === 'failed' ? '✖' : p === 'pending' ? '·' : '›';
}

/** A finished record as the command's result: undefined (exit 0) or the error to exit with (reverted 7, failed 1, aborted 8). */
export function outcome(r: RolloutRecord): FleetxError | undefined {
  const why = r.message ? `: ${r.message}` : '';
  const hint = `see fleetx rollout history ${r.service}`;
  switch (verdictOf(r)) {
    case 'succeeded':
      return undefined;
    case 'aborted':
      return new FleetxError('aborted', `the ${describe(r)} was aborted${why}`, { hint });
    case 'reverted':
      return new FleetxError('reverted', `the ${describe(r)} failed and was reverted${why}`, { hint });
    case 'failed':
      return new FleetxError('failed', `the ${describe(r)} failed${why}`, { hint });
    default:
      return new FleetxError('failed', `the ${describe(r)} ended ${r.state}${why}`, { hint });
  }
}

export const TERMINAL: ReadonlySet<RolloutState> = new Set(['succeeded', 'failed', 'aborted']);
