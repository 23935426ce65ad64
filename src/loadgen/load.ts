/**
 * A bounded HTTP load generator for the sandbox demo, the zero-downtime
 * tests and the rollout benchmark. It keeps `concurrency` requests in
 * flight through keep-alive connections until it is stopped, the request
 * budget is spent or the time limit passes, whichever comes first; it
 * never runs unbounded. Every failure is counted with its kind.
 */
import { Agent, request } from 'node:http';

export interface LoadOptions {
  url: string;
  concurrency: number;
  /** hard limits: both are required so a forgotten stop() still ends */
  maxRequests: number;
  maxDurationMs: number;
  /** per-request timeout */
  timeoutMs?: number;
  /** called for each failed request with its kind and when it was sent (ms epoch): the fault matrix judges each failure by the time */
  onFailure?: (kind: string, sentAt: number) => void;
}

export interface LoadReport {
  requests: number;
  ok: number;
  failures: number;
  /** failure kind (status 503, ECONNRESET, timeout, …) -> count */
  failuresByKind: Record<string, number>;
  /** response body field `version` -> count, to see which revisions answered */
  versions: Record<string, number>;
  durationMs: number;
  p50Ms: number;
  p99Ms: number;
}

export interface LoadRun {
  /** ends the run early; resolves with the report */
  stop(): Promise<LoadReport>;
  done: Promise<LoadReport>;
}

export function startLoad(opts: LoadOptions): LoadRun {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const started = Date.now();
  const latencies: number[] = [];
  const report: LoadReport = { requests: 0, ok: 0, failures: 0, failuresByKind: {}, versions: {}, durationMs: 0, p50Ms: 0, p99Ms: 0 };
  let stopped = false;
  const failer = (sentAt: number) => (kind: string) => {
    report.failures++;
    report.failuresByKind[kind] = (report.failuresByKind[kind] ?? 0) + 1;
    opts.onFailure?.(kind, sentAt);
  };
  const more = () => !stopped && report.requests < opts.maxRequests && Date.now() - started < opts.maxDurationMs;

  const one = () =>
    new Promise<void>((resolve) => {
      report.requests++;
      const t0 = performance.now();
      const fail = failer(Date.now());
      const req = request(opts.url, { agent, timeout: opts.timeoutMs ?? 5000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          latencies.push(performance.now() - t0);
          if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 400) {
            report.ok++;
            const version = versionOf(Buffer.concat(chunks).toString('utf8'));
            if (version) report.versions[version] = (report.versions[version] ?? 0) + 1;
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

  const worker = async () => {
    while (more()) await one();
  };
  const done = Promise.all(Array.from({ length: opts.concurrency }, worker)).then(() => {
    agent.destroy();
    report.durationMs = Date.now() - started;
    const sorted = [...latencies].sort((a, b) => a - b);
    const q = (p: number) => (sorted.length === 0 ? 0 : Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! * 10) / 10);
    report.p50Ms = q(0.5);
    report.p99Ms = q(0.99);
    return report;
  });
  return {
    done,
    stop: () => {
      stopped = true;
      return done;
    },
  };
}

function versionOf(body: string): string | undefined {
  try {
    const v = (JSON.parse(body) as { version?: unknown }).version;
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}
