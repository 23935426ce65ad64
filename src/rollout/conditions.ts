/**
 * What the reports say about one instance: the conditions each phase waits
 * for (docs/ROLLOUT.md, "An instance's way through a rollout"). Pure
 * predicates over an InstanceView; times are milliseconds since the epoch.
 */
import type { InstanceProgress, InstanceView } from './types.js';

export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/** ISO time -> ms; an unreadable time counts as "long ago" so it never satisfies a freshness test. */
export function ms(iso: string | undefined): number {
  const t = iso === undefined ? NaN : Date.parse(iso);
  return Number.isNaN(t) ? Number.NEGATIVE_INFINITY : t;
}

/** The load balancer sends it no new traffic (the syncer acted on the hold). */
export function hasLeft(v: InstanceView): boolean {
  return v.presence?.state === 'draining' || v.presence?.state === 'out';
}

/** No session left, or the drain timeout counted from entering 'draining' passed. */
export function hasDrained(v: InstanceView, drainingSince: number, now: number, drainTimeoutMs: number): boolean {
  return v.presence?.state === 'out' || v.presence?.sessions === 0 || now - drainingSince >= drainTimeoutMs;
}

/** Every machine reports it inactive or failed, or no machine reports it at all. */
export function isStopped(v: InstanceView): boolean {
  return v.states.every((s) => s.activeState === 'inactive' || s.activeState === 'failed');
}

/**
 * How long an instance whose stop was asked must go without any reported
 * state before it counts as stopped. States live under their machine's
 * lease: an etcd outage longer than the TTL deletes them while the units
 * run on, and the agents report again a moment after etcd is back. A
 * machine that is gone stays silent. Counting silence as stopped at once
 * skipped the stop (a rolling restart left one instance unrestarted; found
 * by the fault matrix, quorum lost 30 s).
 */
export const SILENT_STOP_GRACE_MS = 10_000;

/**
 * When a stop asked of an instance nobody reports counts as done (ms), or
 * undefined while a machine reports it or the record still says launched.
 * Counted from `since` (the phase began), or later when the controller was
 * blind to etcd since (`floor`).
 */
export function silentStopAt(v: InstanceView, since: number, floor = 0): number | undefined {
  if (v.states.length > 0 || v.record?.targetState === 'launched') return undefined;
  return Math.max(since, floor) + SILENT_STOP_GRACE_MS;
}

/** Stopped as the 'stopping' phase needs it: reported inactive or failed everywhere, or silent past the grace. */
export function hasStopped(v: InstanceView, since: number, now: number, floor = 0): boolean {
  if (v.states.length > 0) return isStopped(v);
  const at = silentStopAt(v, since, floor);
  return at !== undefined && now >= at;
}

/** Some machine reports it active on the target body. */
export function isStarted(v: InstanceView, targetHash: string): boolean {
  return v.states.some((s) => s.activeState === 'active' && s.hash === targetHash);
}

/**
 * The instance's health record as the controller sees it now: `p` with
 * `health` set to the current record and the time it was first seen (kept
 * while the record is the same one).
 */
export function observeHealth(p: InstanceProgress, v: InstanceView, nowIso: string): InstanceProgress {
  const h = v.health;
  if (h === undefined || sameRecord(p, h)) return p;
  return { ...p, health: { status: h.status, since: h.since, hash: h.hash, seenAt: nowIso } };
}

/**
 * The health record counts for this run of the instance: it changed after
 * the instance was (re)started (a record from before says nothing about the
 * new process). Told by the record's identity, not by comparing the
 * agent's clock with ours; a progress written before healthAtStart existed
 * falls back to the clocks.
 */
export function isFresh(v: InstanceView, p: InstanceProgress, startedAt: number): boolean {
  const h = v.health;
  if (h === undefined) return false;
  return p.healthAtStart !== undefined ? h.since !== p.healthAtStart : ms(h.since) >= startedAt;
}

/**
 * When the controller first saw the current record (ms, its own clock), or
 * the agent's `since` for a progress that has not recorded one.
 */
export function seenSince(v: InstanceView, p: InstanceProgress): number {
  const h = v.health;
  if (h === undefined) return Number.NEGATIVE_INFINITY;
  return sameRecord(p, h) ? ms(p.health!.seenAt) : ms(h.since);
}

/** The progress's seen record is the agent's current one (same since, status and body). */
function sameRecord(p: InstanceProgress, h: NonNullable<InstanceView['health']>): boolean {
  const seen = p.health;
  return seen !== undefined && seen.since === h.since && seen.status === h.status && seen.hash === h.hash;
}

/** Healthy on the target body, fresh, for minHealthyMs as the controller saw it. */
export function isHealthyEnough(v: InstanceView, p: InstanceProgress, startedAt: number, now: number, minHealthyMs: number): boolean {
  const h = v.health;
  if (h === undefined || h.status !== 'healthy' || h.hash !== p.targetHash || !isFresh(v, p, startedAt)) return false;
  return now - seenSince(v, p) >= minHealthyMs;
}

/**
 * The pull of the target body's image ahead of the restart, as the machines
 * running the instance report it: 'ready' when each reports it pulled (or
 * that the body pulls nothing), the runtime's message when one failed,
 * undefined while waiting. No machine runs it: 'ready' (nothing to pull
 * ahead on; the unit's own pull runs at start).
 */
export function pullOutcome(v: InstanceView, targetHash: string): 'ready' | { error: string } | undefined {
  const running = v.states.filter((s) => s.activeState === 'active');
  const failed = running.find((s) => s.pull?.hash === targetHash && s.pull.state === 'failed');
  if (failed !== undefined) return { error: `image pull failed on machine ${failed.machine}: ${failed.pull!.message ?? 'no message'}` };
  const ready = running.every((s) => s.pull?.hash === targetHash && (s.pull.state === 'pulled' || s.pull.state === 'none'));
  return ready ? 'ready' : undefined;
}

/** Back in the balancer. */
export function hasJoined(v: InstanceView): boolean {
  return v.presence?.state === 'in';
}

/**
 * A machine reports the target body failed, in a report written after the
 * start (an older 'failed' is what the restart is fixing).
 */
export function failedReport(v: InstanceView, targetHash: string, startedAt: number): string | undefined {
  const s = v.states.find((st) => st.activeState === 'failed' && st.hash === targetHash && ms(st.updatedAt) >= startedAt);
  return s === undefined ? undefined : `unit failed on machine ${s.machine} (${s.subState})`;
}

/**
 * Down already: not healthy, or not active anywhere. Taking it costs no
 * availability. A destroyed instance (no unit record) is not part of the
 * service any more and is never counted.
 */
export function isUnhealthy(v: InstanceView | undefined): boolean {
  if (v?.record === undefined) return false;
  return v.health?.status !== 'healthy' || !v.states.some((s) => s.activeState === 'active');
}
