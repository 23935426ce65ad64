import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoad } from '../../src/loadgen/load.js';

let server: Server;
let url: string;
let n = 0;
beforeAll(async () => {
  server = createServer((_req, res) => {
    n++;
    if (n % 10 === 0) res.writeHead(503).end();
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{"version":"v1"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('load generator', () => {
  it('stops at the request budget and counts failures by kind', async () => {
    n = 0;
    const r = await startLoad({ url, concurrency: 4, maxRequests: 100, maxDurationMs: 10_000 }).done;
    expect(r.requests).toBe(100);
    expect(r.ok + r.failures).toBe(100);
    expect(r.failuresByKind['status 503']).toBe(10);
    expect(r.versions.v1).toBe(90);
  });

  it('stops at the time limit, and when stopped', async () => {
    const timed = await startLoad({ url, concurrency: 2, maxRequests: 1e9, maxDurationMs: 200 }).done;
    expect(timed.durationMs).toBeGreaterThanOrEqual(200); // it ran to its time limit (the request budget is out of reach)
    const run = startLoad({ url, concurrency: 2, maxRequests: 1e9, maxDurationMs: 60_000 });
    await new Promise((r) => setTimeout(r, 100));
    const stopped = await run.stop();
    expect(stopped.requests).toBeGreaterThan(0);
  });

  it('counts refused connections', async () => {
    const r = await startLoad({ url: 'http://127.0.0.1:9/', concurrency: 1, maxRequests: 3, maxDurationMs: 5000 }).done;
    expect(r.failuresByKind.ECONNREFUSED).toBe(3);
  });
});
