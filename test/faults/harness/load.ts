/**
 * Steady HTTP load through the load balancer while a cell runs, keeping the
 * time and kind of every failed request, so the cell can tell failures
 * while some backend served (violations) from failures while none did
 * (the loss of all backends, which no LB can hide). Bounded in time and
 * count; never unbounded.
 */
import { Agent, request } from 'node:http';

export interface FailedRequest {
  /** ms epoch when the request was sent */
  at: number;
  kind: string;
}

export interface LoadFigures {
  requests: number;
  ok: number;
  failed: FailedRequest[];
  versions: Record<string, number>;
  durationMs: number;
}

export class FaultLoad {
  readonly figures: LoadFigures = { requests: 0, ok: 0, failed: [], versions: {}, durationMs: 0 };
  private stopped = false;
  private readonly started = Date.now();
  private readonly agent: Agent;
  private readonly workers: Promise<void>[];

  constructor(private readonly o: { url: string; concurrency?: number; maxDurationMs?: number; maxRequests?: number; timeoutMs?: number }) {
    const c = o.concurrency ?? 4;
    this.agent = new Agent({ keepAlive: true, maxSockets: c });
    this.workers = Array.from({ length: c }, () => this.worker());
  }

  async stop(): Promise<LoadFigures> {
    this.stopped = true;
    await Promise.all(this.workers);
    this.agent.destroy();
    this.figures.durationMs = Date.now() - this.started;
    return this.figures;
  }

  private more(): boolean {
    return !this.stopped && this.figures.requests < (this.o.maxRequests ?? 1_000_000) && Date.now() - this.started < (this.o.maxDurationMs ?? 300_000);
  }

  private async worker(): Promise<void> {
    while (this.more()) {
      await this.one();
      // a short pause keeps a 2-core machine responsive (the checker must keep its pace)
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private one(): Promise<void> {
    const at = Date.now();
    this.figures.requests++;
    const fail = (kind: string) => this.figures.failed.push({ at, kind });
    return new Promise((resolve) => {
      const req = request(this.o.url, { agent: this.agent, timeout: this.o.timeoutMs ?? 5_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          if (res.statusCode === 200) {
            this.figures.ok++;
            const v = /"version":"([^"]*)"/.exec(body)?.[1];
            if (v) this.figures.versions[v] = (this.figures.versions[v] ?? 0) + 1;
          } else fail(`status ${res.statusCode}`);
          resolve();
        });
        res.on('error', (e: NodeJS.ErrnoException) => {
          fail(e.code ?? 'response error');
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
      req.on('error', (e: NodeJS.ErrnoException) => {
        fail(e.code ?? e.message);
        resolve();
      });
      req.end();
    });
  }
}
