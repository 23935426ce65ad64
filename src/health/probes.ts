/**
 * Health check runners. The agent runs on the instance's machine, so http
 * and tcp checks go to 127.0.0.1. A probe never throws: every failure
 * (refused, timeout, bad status, exit code) is a result with a short,
 * stable message (no timings, so an unchanged outcome rewrites nothing).
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import type { HealthCheck } from '../service/types.js';

export interface ProbeResult {
  ok: boolean;
  message: string;
}

export interface ProbeContext {
  /** the instance's unit, e.g. app@3.service (FLEETX_UNIT for commands) */
  unit: string;
  /** aborts a running probe (agent stopping); the result is then a failure */
  signal?: AbortSignal;
  /** where http/tcp checks connect (default 127.0.0.1) */
  host?: string;
}

export type Probe = (check: HealthCheck, ctx: ProbeContext) => Promise<ProbeResult>;

/** Runs the check once; its timeout is capped by the interval so checks cannot pile up. */
export const runProbe: Probe = (check, ctx) => {
  const timeoutMs = Math.max(1, Math.min(check.timeoutMs, check.intervalMs));
  const host = ctx.host ?? '127.0.0.1';
  switch (check.type) {
    case 'http':
      return probeHttp({ host, port: check.port ?? 80, path: check.path ?? '/', timeoutMs, signal: ctx.signal });
    case 'tcp':
      return probeTcp({ host, port: check.port ?? 0, timeoutMs, signal: ctx.signal });
    case 'command':
      return probeCommand({ argv: check.command ?? [], timeoutMs, env: instanceEnv(ctx.unit), signal: ctx.signal });
    case 'none':
      return Promise.resolve({ ok: true, message: 'no check' });
  }
};

/** FLEETX_UNIT=app@3.service, FLEETX_INSTANCE=3 (empty for a unit that is not a template instance). */
export function instanceEnv(unit: string): Record<string, string> {
  const at = unit.indexOf('@');
  const dot = unit.lastIndexOf('.');
  const instance = at >= 0 && dot > at ? unit.slice(at + 1, dot) : '';
  return { FLEETX_UNIT: unit, FLEETX_INSTANCE: instance };
}

interface Timed {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** GET http://host:port/path; 2xx and 3xx are healthy (redirects are not followed). */
export function probeHttp(o: Timed & { host: string; port: number; path: string }): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const path = o.path.startsWith('/') ? o.path : `/${o.path}`;
    const req = request({ host: o.host, port: o.port, path, method: 'GET', agent: false, headers: { 'user-agent': 'fleetx-health', connection: 'close' } }, (res) => {
      const code = res.statusCode ?? 0;
      finish({ ok: code >= 200 && code < 400, message: `HTTP ${code}` });
      req.destroy(); // the body is not needed, and an endless one must not keep the socket
    });
    const finish = guard(o, resolve, () => req.destroy());
    req.on('error', (e) => finish({ ok: false, message: netMessage(e) }));
    req.end();
  });
}

/** A TCP connection that opens within the timeout is healthy. */
export function probeTcp(o: Timed & { host: string; port: number }): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const sock = connect({ host: o.host, port: o.port });
    const finish = guard(o, resolve, () => sock.destroy());
    sock.once('connect', () => finish({ ok: true, message: 'connected' }));
    sock.once('error', (e) => finish({ ok: false, message: netMessage(e) }));
  });
}

/**
 * Runs argv directly (never a shell) in its own process group, killed as a
 * whole on timeout; exit 0 is healthy. The agent's environment is passed
 * with FLEETX_UNIT / FLEETX_INSTANCE added.
 */
export function probeCommand(o: Timed & { argv: string[]; env: Record<string, string> }): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const [file, ...args] = o.argv;
    if (file === undefined) return resolve({ ok: false, message: 'no command given' });
    let stderr = '';
    const child = spawn(file, args, { env: { ...process.env, ...o.env }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    const kill = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const finish = guard(o, resolve, kill);
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 500) stderr += d.toString();
    });
    child.once('error', (e: NodeJS.ErrnoException) => finish({ ok: false, message: e.code === 'ENOENT' ? `command not found: ${file}` : `cannot run ${file}: ${e.code ?? e.message}` }));
    child.once('exit', (code, sig) => {
      // leftovers of the check (children that kept stderr open) must not hold it up
      child.stderr.destroy();
      kill();
      if (code === 0) return finish({ ok: true, message: 'exit 0' });
      const line = stderr.split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 200);
      const how = sig !== null ? `killed by ${sig}` : `exit ${code}`;
      finish({ ok: false, message: line ? `${how}: ${line}` : how });
    });
  });
}

/** One result per probe: the first of outcome, timeout and abort wins; cleanup runs on timeout/abort. */
function guard(o: Timed, resolve: (r: ProbeResult) => void, cleanup: () => void): (r: ProbeResult) => void {
  let done = false;
  const timer = setTimeout(() => {
    finish({ ok: false, message: `timed out after ${o.timeoutMs} ms` });
    cleanup();
  }, o.timeoutMs);
  const onAbort = () => {
    finish({ ok: false, message: 'aborted' });
    cleanup();
  };
  if (o.signal?.aborted) queueMicrotask(onAbort);
  else o.signal?.addEventListener('abort', onAbort, { once: true });
  function finish(r: ProbeResult): void {
    if (done) return;
    done = true;
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
    resolve(r);
  }
  return finish;
}

function netMessage(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'unreachable';
    default:
      return e.code ?? e.message;
  }
}
