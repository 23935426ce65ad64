/**
 * Pre-pull: a rollout about to restart a unit onto a new body first sets
 * that body's hash as `next` on the unit's schedule record; the agent then
 * runs the new body's own pull step (src/unit/pull.ts) while the old one
 * still serves, and reports the outcome in the unit's state record
 * (`pull`, a PullReport). The rollout waits for `pulled` (or `none`: the
 * body has no pull step) before it takes the instance out of the load
 * balancer, and fails the instance with the runtime's message on `failed`.
 *
 * The command is an argv array spawned directly (never a shell), exactly
 * the words of the unit's ExecStartPre line, which systemd would run as
 * root moments later anyway. One pull per unit at a time; a unit whose
 * `next` goes away (stopped, rollout over) is forgotten and its report
 * cleared, so the next rollout pulls afresh.
 */
import { spawn } from 'node:child_process';
import type { PullReport } from '../registry/records.js';
import { parseUnit } from '../unit/parse.js';
import { pullStep } from '../unit/pull.js';

export interface PullWant {
  unit: string;
  /** the next body's hash */
  hash: string;
  /** its text; undefined while it is not fetched (waits for a later pass) */
  text?: string;
}

export interface PullRun {
  code: number | null;
  stderr: string;
}

export interface PrePullerOptions {
  /** a unit's report changed (undefined: cleared) */
  report(unit: string, r: PullReport | undefined): void;
  now: () => Date;
  /** runs argv (default: spawn without a shell) */
  run?: (argv: string[], signal: AbortSignal) => Promise<PullRun>;
  /** a pull taking longer is killed and reported failed (default 10 min) */
  timeoutMs?: number;
}

export class PrePuller {
  /** unit -> hash pulled, being pulled, or found to need nothing */
  private readonly handled = new Map<string, string>();
  private readonly running = new Map<string, { ctl: AbortController; done: Promise<void> }>();

  constructor(private readonly o: PrePullerOptions) {}

  /** The pulls the schedule asks for now; starts new ones, forgets units no longer asking. */
  sync(wants: readonly PullWant[]): void {
    const byUnit = new Map(wants.map((w) => [w.unit, w]));
    for (const unit of [...this.handled.keys()]) {
      const w = byUnit.get(unit);
      if (w !== undefined && w.hash === this.handled.get(unit)) continue;
      this.running.get(unit)?.ctl.abort();
      this.handled.delete(unit);
      this.o.report(unit, undefined);
    }
    for (const w of wants) {
      if (this.handled.has(w.unit) || w.text === undefined) continue;
      this.handled.set(w.unit, w.hash);
      this.start(w, w.text);
    }
  }

  /** Aborts the pulls in progress and waits for them. */
  async stop(): Promise<void> {
    for (const r of this.running.values()) r.ctl.abort();
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }

  private start(w: PullWant, text: string): void {
    const startedAt = this.o.now().toISOString();
    let step;
    try {
      step = pullStep(parseUnit(text, `body ${w.hash}`), w.unit);
    } catch {
      step = undefined; // the engine validated it; an unparsable body has nothing we could pull
    }
    if (step === undefined) {
      this.o.report(w.unit, { hash: w.hash, state: 'none', startedAt, finishedAt: startedAt });
      return;
    }
    const { argv, image } = step;
    this.o.report(w.unit, { hash: w.hash, state: 'pulling', image, startedAt });
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, this.o.timeoutMs ?? 600_000);
    const run = this.o.run ?? spawnPull;
    const done = run(argv, ctl.signal)
      .catch((e: unknown): PullRun => ({ code: null, stderr: e instanceof Error ? e.message : String(e) }))
      .then((r) => {
        clearTimeout(timer);
        this.running.delete(w.unit);
        if (this.handled.get(w.unit) !== w.hash) return; // forgotten meanwhile
        const finishedAt = this.o.now().toISOString();
        if (r.code === 0) {
          this.o.report(w.unit, { hash: w.hash, state: 'pulled', image, startedAt, finishedAt });
          return;
        }
        const why = timedOut ? `killed after ${this.o.timeoutMs ?? 600_000} ms` : `exit ${r.code ?? 'by signal'}`;
        this.o.report(w.unit, { hash: w.hash, state: 'failed', image, message: `${argv.join(' ')}: ${why}: ${lastLines(r.stderr)}`, startedAt, finishedAt });
      });
    this.running.set(w.unit, { ctl, done });
  }
}

/** The last lines of a runtime's stderr, where the registry's error is (e.g. "manifest unknown"). */
function lastLines(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines.slice(-2).join(' / ').slice(0, 500) || '(no output)';
}

function spawnPull(argv: string[], signal: AbortSignal): Promise<PullRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], signal });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-8_000);
    });
    child.on('error', (e) => (signal.aborted ? resolve({ code: null, stderr }) : reject(e)));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}
