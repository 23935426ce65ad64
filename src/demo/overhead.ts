/**
 * Rollout overhead (pure): how much longer a rolling restart takes than the
 * waits it cannot avoid. Input: the `--output json` instance events of
 * `fleetx rolling-restart` (each phase entered, with the controller's
 * timestamp) and the service's settings. Per instance:
 *
 *   unavoidable = draining + stopping + starting      (measured: time spent in those phases)
 *               + startDelay                          (the app's own start-up before it listens, from its values)
 *               + threshold x interval + minHealthy   (health checks that must pass, from the service)
 *
 * ratio = rollout wall time (record createdAt -> finishedAt) / sum of unavoidable
 * (maxUnavailable 1: instances go one after another). Everything else is
 * overhead: leaving (hold written -> LB draining), checking beyond its
 * share above (health probe and controller tick latency), joining (LB
 * checks, syncer poll), and gaps between instances.
 */

export interface PhaseEvent {
  unit: string;
  phase: string;
  /** ISO time the instance entered the phase */
  time: string;
}

export interface OverheadConfig {
  startDelayMs: number;
  healthIntervalMs: number;
  healthThreshold: number;
  minHealthyMs: number;
}

export interface InstanceTimes {
  unit: string;
  /** ms per phase (phases passed within one controller step count 0) */
  phases: Record<string, number>;
  unavoidableMs: number;
  /** from leaving (or the first phase after pending) to done */
  spanMs: number;
}

export interface OverheadReport {
  instances: InstanceTimes[];
  wallMs: number;
  unavoidableMs: number;
  ratio: number;
  /** summed over instances: leaving, checking beyond startDelay + health + minHealthy, joining; gaps = wall - sum of spans */
  overheadMs: { leaving: number; checkingExtra: number; joining: number; gaps: number };
}

const IN_FLIGHT = ['leaving', 'draining', 'stopping', 'starting', 'checking', 'joining'];

export function rolloutOverhead(events: PhaseEvent[], wallMs: number, c: OverheadConfig): OverheadReport {
  const byUnit = new Map<string, PhaseEvent[]>();
  for (const e of events) byUnit.set(e.unit, [...(byUnit.get(e.unit) ?? []), e]);
  const healthMs = c.startDelayMs + c.healthThreshold * c.healthIntervalMs + c.minHealthyMs;
  const instances: InstanceTimes[] = [];
  for (const [unit, evs] of [...byUnit].sort(([a], [b]) => a.localeCompare(b))) {
    const sorted = [...evs].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    const phases: Record<string, number> = Object.fromEntries(IN_FLIGHT.map((p) => [p, 0]));
    for (let i = 0; i < sorted.length - 1; i++) {
      const p = sorted[i]!.phase;
      if (p in phases) phases[p]! += Date.parse(sorted[i + 1]!.time) - Date.parse(sorted[i]!.time);
    }
    const first = sorted.find((e) => IN_FLIGHT.includes(e.phase));
    const done = sorted.find((e) => e.phase === 'done');
    const spanMs = first && done ? Date.parse(done.time) - Date.parse(first.time) : 0;
    const unavoidableMs = phases.draining! + phases.stopping! + phases.starting! + healthMs;
    instances.push({ unit, phases, unavoidableMs, spanMs });
  }
  const sum = (f: (i: InstanceTimes) => number) => instances.reduce((a, i) => a + f(i), 0);
  const unavoidableMs = sum((i) => i.unavoidableMs);
  return {
    instances,
    wallMs,
    unavoidableMs,
    ratio: unavoidableMs > 0 ? wallMs / unavoidableMs : Number.NaN,
    overheadMs: {
      leaving: sum((i) => i.phases.leaving!),
      checkingExtra: sum((i) => i.phases.checking! - healthMs),
      joining: sum((i) => i.phases.joining!),
      gaps: wallMs - sum((i) => i.spanMs),
    },
  };
}
