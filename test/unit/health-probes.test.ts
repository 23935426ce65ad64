/**
 * Probes against real local servers and real commands (loopback only).
 */
import { createServer as createHttp, type Server } from 'node:http';
import { createServer as createTcp, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instanceEnv, probeCommand, runProbe } from '../../src/health/probes.js';
import type { HealthCheck } from '../../src/service/types.js';

let http: Server;
let httpPort: number;
let hangPort: number;
let closedPort: number;
const hung = new Set<import('node:net').Socket>();
const hang = createTcp((s) => void hung.add(s)); // accepts and never answers

const check = (c: Partial<HealthCheck>): HealthCheck => ({ type: 'http', intervalMs: 1000, timeoutMs: 300, threshold: 1, failureThreshold: 1, ...c });

beforeAll(async () => {
  http = createHttp((req, res) => {
    const code = Number(req.url?.slice(1)) || 200;
    if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2000);
    if (req.url === '/stream') {
      res.writeHead(200);
      const t = setInterval(() => res.write('x'.repeat(1024)), 5);
      res.on('close', () => clearInterval(t));
      return;
    }
    res.writeHead(code, code === 302 ? { location: '/elsewhere' } : {}).end('x');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  httpPort = (http.address() as AddressInfo).port;
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  hangPort = (hang.address() as AddressInfo).port;
  // a port nobody listens on: bind, read the port, close
  const tmp = createTcp();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  closedPort = (tmp.address() as AddressInfo).port;
  await new Promise((r) => tmp.close(r));
});

afterAll(async () => {
  http.closeAllConnections();
  await new Promise((r) => http.close(r));
  for (const s of hung) s.destroy();
  await new Promise((r) => hang.close(r));
});

describe('http probe', () => {
  it.each([
    { path: '/200', ok: true, message: 'HTTP 200' },
    { path: '/204', ok: true, message: 'HTTP 204' },
    { path: '/302', ok: true, message: 'HTTP 302' },
    { path: '/404', ok: false, message: 'HTTP 404' },
    { path: '/503', ok: false, message: 'HTTP 503' },
  ])('GET $path → ok=$ok', async ({ path, ok, message }) => {
    expect(await runProbe(check({ port: httpPort, path }), { unit: 'a.service' })).toEqual({ ok, message });
  });

  it('a server that does not answer in time fails with a timeout', async () => {
    expect(await runProbe(check({ port: httpPort, path: '/slow' }), { unit: 'a.service' })).toEqual({ ok: false, message: 'timed out after 300 ms' });
  });

  it('an endless body does not hold the probe or its connection', async () => {
    expect(await runProbe(check({ port: httpPort, path: '/stream' }), { unit: 'a.service' })).toEqual({ ok: true, message: 'HTTP 200' });
    await new Promise((r) => setTimeout(r, 50));
    const open = await new Promise<number>((r) => http.getConnections((_e, n) => r(n)));
    expect(open).toBe(0);
  });

  it('a closed port is refused', async () => {
    expect(await runProbe(check({ port: closedPort, path: '/' }), { unit: 'a.service' })).toEqual({ ok: false, message: 'connection refused' });
  });

  it('the timeout is capped by the interval', async () => {
    const r = await runProbe(check({ port: hangPort, path: '/', timeoutMs: 5000, intervalMs: 200 }), { unit: 'a.service' });
    expect(r).toEqual({ ok: false, message: 'timed out after 200 ms' });
  });

  it('an abort ends a probe at once', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    expect(await runProbe(check({ port: hangPort, path: '/', timeoutMs: 5000, intervalMs: 10_000 }), { unit: 'a.service', signal: ac.signal })).toEqual({ ok: false, message: 'aborted' });
  });
});

describe('tcp probe', () => {
  it.each([
    { what: 'listening', port: () => httpPort, ok: true, message: 'connected' },
    { what: 'closed', port: () => closedPort, ok: false, message: 'connection refused' },
  ])('$what port', async ({ port, ok, message }) => {
    expect(await runProbe(check({ type: 'tcp', port: port() }), { unit: 'a.service' })).toEqual({ ok, message });
  });
});

describe('command probe', () => {
  const cmd = (command: string[], timeoutMs = 1000) => runProbe(check({ type: 'command', command, timeoutMs, intervalMs: 5000 }), { unit: 'app@7.service' });

  it.each([
    { argv: ['/bin/true'], ok: true, message: 'exit 0' },
    { argv: ['/bin/false'], ok: false, message: 'exit 1' },
    { argv: ['/bin/sh', '-c', 'echo "bad thing" >&2; exit 3'], ok: false, message: 'exit 3: bad thing' },
    { argv: ['/no/such/binary'], ok: false, message: 'command not found: /no/such/binary' },
    { argv: [], ok: false, message: 'no command given' },
  ])('$argv → ok=$ok', async ({ argv, ok, message }) => {
    expect(await cmd(argv)).toEqual({ ok, message });
  });

  it('never goes through a shell: metacharacters are plain arguments', async () => {
    expect(await cmd(['/bin/echo', '$(exit 1); false'])).toEqual({ ok: true, message: 'exit 0' });
    expect(await cmd(['/bin/test', '$HOME', '=', '$HOME'])).toEqual({ ok: true, message: 'exit 0' });
  });

  it('passes FLEETX_UNIT and FLEETX_INSTANCE', async () => {
    expect(await cmd(['/bin/sh', '-c', 'test "$FLEETX_UNIT" = app@7.service && test "$FLEETX_INSTANCE" = 7'])).toEqual({ ok: true, message: 'exit 0' });
  });

  it('kills the whole process group on timeout', async () => {
    const marker = `30.${process.pid}${Date.now() % 100000}`; // a sleep duration no one else uses
    const r = await cmd(['/bin/sh', '-c', `sleep ${marker} & sleep ${marker}`], 200);
    expect(r).toEqual({ ok: false, message: 'timed out after 200 ms' });
    await new Promise((res) => setTimeout(res, 100));
    const { execFileSync } = await import('node:child_process');
    const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(marker));
    expect(left).toEqual([]);
  });

  it('a direct call works without the check wrapper', async () => {
    expect(await probeCommand({ argv: ['/bin/true'], timeoutMs: 500, env: {} })).toEqual({ ok: true, message: 'exit 0' });
  });

  it.each([
    ['app@3.service', { FLEETX_UNIT: 'app@3.service', FLEETX_INSTANCE: '3' }],
    ['app@blue.service', { FLEETX_UNIT: 'app@blue.service', FLEETX_INSTANCE: 'blue' }],
    ['plain.service', { FLEETX_UNIT: 'plain.service', FLEETX_INSTANCE: '' }],
  ])('instanceEnv(%s)', (unit, env) => {
    expect(instanceEnv(unit)).toEqual(env);
  });
});
