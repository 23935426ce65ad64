/**
 * Steady HTTP load through the load balancer while a cell runs (the
 * loadgen of the demo and the benchmarks), keeping the time and kind of
 * every failed request, so the cell can tell failures while some backend
 * served (violations) from failures while none did (the loss of every
 * backend, which no LB can hide). Bounded in time and count.
 */
import { startLoad, type LoadReport, type LoadRun } from '../../../src/loadgen/load.js';

export interface FailedRequest {
  /** ms epoch when the request was sent */
  at: number;
  kind: string;
}

export class FaultLoad {
  readonly failed: FailedRequest[] = [];
  private readonly run: LoadRun;

  constructor(o: { url: string; concurrency?: number; maxDurationMs?: number; maxRequests?: number; timeoutMs?: number }) {
    this.run = startLoad({
      url: o.url, concurrency: o.concurrency ?? 4, maxDurationMs: o.maxDurationMs ?? 300_000, maxRequests: o.maxRequests ?? 1_000_000,
      // HAProxy's own `timeout server` (30 s): a client never gives up before
      // the LB would, so a timeout is HAProxy not answering, not this
      // process starved of CPU on a loaded machine (5 s counted those).
      timeoutMs: o.timeoutMs ?? 30_000, onFailure: (kind, at) => this.failed.push({ at, kind }),
    });
  }

  stop(): Promise<LoadReport> {
    return this.run.stop();
  }
}
