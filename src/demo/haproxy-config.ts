/**
 * The demo HAProxy's config (pure). Shaped for the presence driver
 * (src/presence/README.md): one parked, health-checked slot per possible
 * instance, named after it (web@1.service -> web-1), and an admin-level
 * stats socket. The frontend binds the sandbox bridge address only.
 */

export interface HaproxyConfigOptions {
  /** bridge address, e.g. 10.213.0.1 */
  bindAddress: string;
  port: number;
  socket: string;
  backend: string;
  /** slot names, e.g. web-1 … web-6 */
  slots: string[];
  /** health check path (the service's health.path) */
  checkPath: string;
}

export function haproxyConfig(o: HaproxyConfigOptions): string {
  return [
    '# written by fleetx sandbox up --demo; the presence syncer drives the slots at run time',
    'global',
    `  stats socket ${o.socket} mode 600 level admin`,
    '  stats timeout 30s',
    // Only abnormal requests are logged (dontlog-normal): retries, errors, aborts.
    '  log stderr format raw local0 info',
    'defaults',
    '  mode http',
    '  log global',
    '  option httplog',
    '  option dontlog-normal',
    '  timeout connect 1s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout http-keep-alive 10s',
    // A request that races a stopping instance (connection refused, closed
    // without an answer) is sent again, to another server.
    '  retries 3',
    '  option redispatch 1',
    '  retry-on conn-failure empty-response response-timeout',
    `frontend ${o.backend}-in`,
    `  bind ${o.bindAddress}:${o.port}`,
    `  default_backend ${o.backend}`,
    `backend ${o.backend}`,
    '  balance roundrobin',
    `  option httpchk GET ${o.checkPath}`,
    // Idle server connections are reused only by requests that can be
    // retried safely; a draining instance closes its idle ones.
    '  http-reuse safe',
    // Checks every 100 ms (a handful of servers: cheap), so a readied server is
    // seen UP within about one interval.
    // One good check brings a server back (rise 1): fleetx's own health
    // checks have already held the instance healthy for the minimum healthy
    // time before the syncer readies it, so HAProxy only has to confirm it
    // reaches the instance. Two failures (fall 2) take one out.
    '  default-server inter 100ms fall 2 rise 1',
    ...o.slots.map((s) => `  server ${s} 0.0.0.0:1 disabled check`),
    '',
  ].join('\n');
}

/** web@.service, 5 -> web-1 … web-5 (the presence driver's slot names). */
export function slotNames(template: string, count: number): string[] {
  const prefix = template.slice(0, template.indexOf('@'));
  return Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`);
}
