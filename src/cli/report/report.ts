/**
 * The final report of a command that starts a rollout (deploy, undo,
 * rolling-restart): what a pipeline archives and branches on. Pure: built
 * from the last rollout record seen, the command's error (if any) and what
 * happened when the build was stopped. The same object is the last JSON line
 * under `-o json` and the file `--report FILE.json` (JUnit: junit.ts).
 */
import { exitCodeOf, isFleetxError } from '../../errors/errors.js';
import type { RolloutHolder, RolloutRecord } from '../../rollout/types.js';
import { verdictOf } from '../../rollout/verdict.js';

export const REPORT_SCHEMA = 'fleetx/report/v1';

export type OnAbort = 'detach' | 'pause' | 'abort';

export type ReportOutcome =
  | 'succeeded' // the rollout ended succeeded (exit 0)
  | 'unchanged' // nothing to roll: already at that revision (exit 0)
  | 'started' // --detach: started, not followed (exit 0)
  | 'reverted' // failed, auto-revert brought every instance back (exit 7)
  | 'failed' // failed, not reverted (exit 1)
  | 'aborted' // ended aborted (exit 8)
  | 'timeout' // --timeout ended the wait; the rollout goes on (exit 9)
  | 'interrupted' // the build was stopped (SIGTERM/SIGINT/SIGHUP); see `interrupted` (exit 143/130/129)
  | 'locked' // refused: another rollout holds the service's lock (exit 5)
  | 'error'; // refused before anything started: bad input, etcd unreachable, … (see error)

export interface InstanceReport {
  unit: string;
  phase: string;
  /** the instance ended done on the rollout's target body */
  onTarget: boolean;
  since: string;
  startedAt?: string;
  error?: string;
  note?: string;
  surge?: boolean;
}

export interface RolloutReport {
  schema: typeof REPORT_SCHEMA;
  command: string;
  service?: string;
  outcome: ReportOutcome;
  exitCode: number;
  message?: string;
  startedAt: string;
  endedAt: string;
  rollout?: {
    id: string;
    kind: RolloutRecord['kind'];
    state: RolloutRecord['state'];
    fromRevision?: number;
    toRevision?: number;
    revertedTo?: number;
    holder: RolloutHolder;
    createdAt: string;
    finishedAt?: string;
    message?: string;
  };
  instances: InstanceReport[];
  /** the build was stopped while following: the signal and what was done about the rollout */
  interrupted?: { signal: string; onAbort: OnAbort; action: string };
  error?: { kind: string; message: string; hint?: string; [k: string]: unknown };
}

export interface ReportInput {
  command: string;
  service?: string;
  startedAt: string;
  endedAt: string;
  /** the last rollout record seen (finished, or as it was when following stopped) */
  rollout?: RolloutRecord;
  detached?: boolean;
  unchanged?: { revision: number; message: string };
  error?: unknown;
  interrupted?: RolloutReport['interrupted'];
}

export function buildReport(i: ReportInput): RolloutReport {
  const r = i.rollout;
  const exitCode = i.error === undefined ? 0 : exitCodeOf(i.error);
  const report: RolloutReport = {
    schema: REPORT_SCHEMA,
    command: i.command,
    ...(i.service ?? r?.service ? { service: i.service ?? r?.service } : {}),
    outcome: outcomeOf(i, exitCode),
    exitCode,
    startedAt: i.startedAt,
    endedAt: i.endedAt,
    instances: r ? instancesOf(r) : [],
  };
  const message = i.unchanged?.message ?? (i.error instanceof Error ? i.error.message : r?.message);
  if (message) report.message = message;
  if (r) {
    report.rollout = {
      id: r.id,
      kind: r.kind,
      state: r.state,
      ...(r.fromRevision !== undefined ? { fromRevision: r.fromRevision } : {}),
      ...(r.toRevision !== undefined ? { toRevision: r.toRevision } : {}),
      ...(verdictOf(r) === 'reverted' && r.revertTo ? { revertedTo: r.revertTo.revision } : {}),
      holder: r.holder,
      createdAt: r.createdAt,
      ...(r.finishedAt ? { finishedAt: r.finishedAt } : {}),
      ...(r.message ? { message: r.message } : {}),
    };
  }
  if (i.interrupted) report.interrupted = i.interrupted;
  if (i.error !== undefined) {
    const f = isFleetxError(i.error) ? i.error : undefined;
    report.error = {
      kind: f?.kind ?? 'internal',
      message: i.error instanceof Error ? i.error.message : String(i.error),
      ...(f?.hint ? { hint: f.hint } : {}),
      ...(f?.details ?? {}),
    };
  }
  return report;
}

function outcomeOf(i: ReportInput, exitCode: number): ReportOutcome {
  if (i.interrupted) return 'interrupted';
  if (i.error === undefined) return i.unchanged ? 'unchanged' : i.detached ? 'started' : 'succeeded';
  const f = isFleetxError(i.error) ? i.error : undefined;
  if (f?.details?.lock !== undefined) return 'locked';
  switch (f?.kind) {
    case 'reverted':
    case 'aborted':
    case 'timeout':
      return f.kind;
    case 'failed':
      return i.rollout && exitCode === 1 ? 'failed' : 'error';
    default:
      return 'error';
  }
}

function instancesOf(r: RolloutRecord): InstanceReport[] {
  return Object.values(r.instances)
    .sort((a, b) => (a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : 0))
    .map((p) => ({
      unit: p.unit,
      phase: p.phase,
      onTarget: p.phase === 'done' && p.targetHash === r.toHash,
      since: p.since,
      ...(p.startedAt ? { startedAt: p.startedAt } : {}),
      ...(p.error ? { error: p.error } : {}),
      ...(p.note ? { note: p.note } : {}),
      ...(p.surge ? { surge: true } : {}),
    }));
}
