#!/usr/bin/env node
// The sandbox's demo service: a small HTTP server that behaves like a real
// app during restarts. It takes a moment to start (--start-delay), answers
// GET / with its version and instance, serves /healthz, and on SIGTERM stops
// accepting connections, finishes the requests in flight, then exits.
//
//   node demo/web.mjs --port 8080 --version v1 [--start-delay 1500] [--unhealthy]
//     [--unhealthy-after MS] [--flap MS]
// --unhealthy-after: /healthz fails from MS after it listens (a version that
// goes bad after joining); --flap: /healthz alternates every MS (a flapping
// check). Both are for the fault matrix (test/faults/).
//
// Plain JavaScript on purpose: it runs with the host's node, no build, no deps.
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8080' },
    version: { type: 'string', default: 'v1' },
    instance: { type: 'string', default: '' },
    'start-delay': { type: 'string', default: '1500' },
    unhealthy: { type: 'boolean', default: false },
    'unhealthy-after': { type: 'string', default: '' },
    flap: { type: 'string', default: '' },
    grace: { type: 'string', default: '20000' },
  },
});
const port = Number(values.port);
const startDelay = Number(values['start-delay']);
let stopping = false;
let inFlight = 0;
let listeningAt = 0;
const unhealthyAfter = values['unhealthy-after'] ? Number(values['unhealthy-after']) : undefined;
const flap = values.flap ? Number(values.flap) : undefined;
/** What /healthz says now (see --unhealthy-after, --flap). */
function healthy() {
  if (stopping || values.unhealthy) return false;
  const up = Date.now() - listeningAt;
  if (unhealthyAfter !== undefined && up >= unhealthyAfter) return false;
  if (flap !== undefined && flap > 0 && Math.floor(up / flap) % 2 === 1) return false;
  return true;
}

const server = createServer((req, res) => {
  inFlight++;
  res.on('close', () => inFlight--);
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/healthz') {
    const ok = healthy();
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'unhealthy\n');
    return;
  }
  // up to 30 s: longer than a container runtime's default 10 s stop timeout (the e2e drains one)
  const delay = Math.min(Number(url.searchParams.get('delay') ?? 0) || 0, 30_000);
  setTimeout(() => {
    // While stopping, ask clients to open a new connection for the next request.
    if (stopping) res.setHeader('connection', 'close');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ version: values.version, instance: values.instance, host: hostname() }) + '\n');
  }, delay);
});
server.keepAliveTimeout = 5_000;

process.on('SIGTERM', () => {
  stopping = true;
  // Stop accepting; close idle keep-alive connections; let requests in flight finish.
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  const timer = setInterval(() => {
    if (inFlight === 0) server.closeAllConnections();
  }, 50);
  timer.unref();
  setTimeout(() => process.exit(0), Number(values.grace)).unref();
});

setTimeout(() => {
  server.listen(port, '0.0.0.0', () => {
    listeningAt = Date.now();
    process.stdout.write(`web ${values.version} listening on :${port}\n`);
  });
}, startDelay);
