/**
 * The metrics endpoint: `GET /metrics` in Prometheus' text format (which
 * OpenMetrics scrapers read too), nothing else. Where it listens is
 * `--metrics-listen` / FLEETX_METRICS_LISTEN:
 *
 *   127.0.0.1:9170   the default: only this host (the dd-agent sidecar runs
 *                    with the host's network and scrapes it there)
 *   10.0.0.5:9170    an address of the host, for a Prometheus elsewhere
 *   :9170            every address
 *   off              no endpoint (prom-client is then never loaded)
 */
import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { usageError } from '../errors/errors.js';

export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9170';

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Pure: 'HOST:PORT', '[V6]:PORT', ':PORT' (every address) or 'off' (undefined).
 * @throws FleetxError 'usage' naming what is wrong.
 */
export function parseListen(text: string): ListenAddress | undefined {
  const s = text.trim();
  if (s === 'off') return undefined;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s);
  const host = m ? (m[1] ?? m[2] ?? '') : '';
  const port = m ? Number(m[3]) : NaN;
  const hint = 'give HOST:PORT (e.g. 127.0.0.1:9170), :PORT for every address, or off';
  if (!m || port < 1 || port > 65535) throw usageError(`--metrics-listen must be an address and port, got "${text}"`, hint);
  if (host !== '' && isIP(host) === 0) throw usageError(`--metrics-listen needs an IP address, got "${host}"`, hint);
  return { host: host === '' ? '0.0.0.0' : host, port };
}

export interface MetricsSource {
  contentType: string;
  metrics(): Promise<string>;
}

export interface MetricsServer {
  /** host:port it listens on (the port is the real one when 0 was asked) */
  address: string;
  close(): Promise<void>;
}

/** Listens until close(). @throws the listen error (EADDRINUSE, EADDRNOTAVAIL) as Node gives it. */
export async function serveMetrics(at: ListenAddress, source: MetricsSource): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('see /metrics\n');
      return;
    }
    source.metrics().then(
      (text) => res.writeHead(200, { 'content-type': source.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(e)}\n`),
    );
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address();
  const address = a && typeof a === 'object' ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : `${at.host}:${at.port}`;
  return {
    address,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // a scraper's keep-alive connection must not hold the daemon's stop
      }),
  };
}

/**
 * The endpoint is a convenience, the daemon's work is not: a port in use or
 * an address the host lacks is logged, and the daemon runs on without it.
 */
export async function serveMetricsLogged(at: ListenAddress | undefined, source: MetricsSource, log: Logger): Promise<MetricsServer | undefined> {
  if (!at) return undefined;
  try {
    const server = await serveMetrics(at, source);
    log.info({ address: server.address }, 'metrics served on /metrics');
    return server;
  } catch (err) {
    log.warn({ err, listen: `${at.host}:${at.port}` }, 'metrics endpoint could not listen; running without it');
    return undefined;
  }
}
