/**
 * Runs leader passes one at a time, coalescing triggers: a burst of watch
 * events within `debounceMs` becomes one pass, and events that arrive during
 * a pass cause exactly one more pass after it. A failed pass is retried after
 * `retryMs` (the failure itself is reported by the pass function).
 */
export type PassOutcome = 'ok' | 'retry' | 'stop';

export class PassRunner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private dirty = false;
  private reasons: string[] = [];
  private stopped = false;

  constructor(
    private readonly pass: (reasons: string[]) => Promise<PassOutcome>,
    private readonly debounceMs: number,
    private readonly retryMs: number,
  ) {}

  /** Asks for a pass `delayMs` from now (default: the debounce), unless one is already due sooner. */
  kick(reason: string, delayMs = this.debounceMs): void {
    if (this.stopped) return;
    if (this.reasons.length < 20) this.reasons.push(reason);
    if (this.running !== undefined) {
      this.dirty = true;
      return;
    }
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => this.fire(), delayMs);
  }

  /** Stops scheduling passes and waits for the running one to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private fire(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const reasons = this.reasons;
    this.reasons = [];
    this.dirty = false;
    this.running = this.pass(reasons).then(
      (outcome) => this.after(outcome),
      () => this.after('retry'),
    );
  }

  private after(outcome: PassOutcome): void {
    this.running = undefined;
    if (outcome === 'stop') {
      this.stopped = true;
      return;
    }
    if (outcome === 'retry') this.kick('retry after a failed pass', this.retryMs);
    else if (this.dirty) this.kick('changes during the last pass');
  }
}
