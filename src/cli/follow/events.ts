/**
 * Pure: what changed between two versions of a rollout record, as events,
 * and how each output mode prints them. The follow loop (follow.ts) feeds
 * records in; renderers (render.ts) print; tests feed sequences directly.
 */
import { failedError, type FleetxError } from '../../errors/errors.js';
import type { InstancePhase, RolloutRecord, RolloutState } from '../../rollout/types.js';

export type FollowEvent =
  | { time: string; service: string; rollout: string; type: 'state'; state: RolloutState; kind: RolloutRecord['kind']; toRevision?: number; message?: string }
  | { time: string; service: string; rollout: string; type: 'instance'; unit: string; phase: InstancePhase; error?: string; note?: string };

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
  if (e.type === 'instance') {
    const extra = e.error ? `: ${e.error}` : e.note ? ` (${e.note})` : '';
    return `${shortTime(e.time)} ${e.unit} ${e.phase}${extra}`;
  }
  return `${shortTime(e.time)} ${describe(e)} ${e.state}${e.message ? `: ${e.message}` : ''}`;
}

export const jsonLine = (e: FollowEvent): string => JSON.stringify(e);

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

/** A finished record as the command's result: undefined (exit 0) or the error to exit with. */
export function outcome(r: RolloutRecord): FleetxError | undefined {
  switch (r.state) {
    case 'succeeded':
      return undefined;
    case 'aborted':
      return failedError(`the ${describe(r)} was aborted${r.message ? `: ${r.message}` : ''}`);
    default:
      return failedError(`the ${describe(r)} ${r.state === 'failed' ? 'failed' : `ended ${r.state}`}${r.message ? `: ${r.message}` : ''}`, `see fleetx rollout history ${r.service}`);
  }
}

export const TERMINAL: ReadonlySet<RolloutState> = new Set(['succeeded', 'failed', 'aborted']);
