/**
 * Builds the etcd3 client from ConnectionOptions.
 *
 * Why the fault-handling override: etcd3's default global policy retries
 * every "recoverable" error 3 times, and each retry gets a fresh deadline,
 * so an etcd that does not answer at all would take 3 × the request timeout
 * to report. We retry only UNAVAILABLE (a refused connection fails fast) and
 * only as many times as there are other endpoints to try; DEADLINE_EXCEEDED
 * is returned at once. Long-running callers (agent, engine) have their own
 * retry loops. Watches and reconnects back off to at most a few seconds
 * (see below).
 *
 * Why the per-host circuit breaker is replaced: etcd3's counts every
 * "recoverable" gRPC error, including answers from a healthy member such as
 * RESOURCE_EXHAUSTED (the NOSPACE alarm refusing writes). Three refused
 * writes opened the circuit, and reads from that member then failed as
 * "unreachable" for 5 s at a time. Ours counts only what says the member is
 * gone or hung: UNAVAILABLE (refused, reset) and DEADLINE_EXCEEDED (no
 * answer), so a dead or frozen member is still skipped for 5 s.
 */
import { readFileSync } from 'node:fs';
import type { Interceptor } from '@grpc/grpc-js';
import type { IBackoff } from 'cockatiel';
import type { Etcd3, IOptions } from 'etcd3';
import { usageError } from '../errors/errors.js';
import type { ConnectionOptions } from './connection.js';
import { cockatiel, etcd3 } from './libraries.js';

const { BrokenCircuitError, circuitBreaker, CircuitState, ConsecutiveBreaker, ExponentialBackoff, handleType, noop, retry } = cockatiel;

/**
 * A member that refused or dropped the connection, or did not answer in time:
 * skip it for a while. After the pause one trial call goes to it; while that
 * trial is out, other calls skip the member too (etcd3 tries the next one)
 * instead of waiting for the trial as cockatiel's breaker has them do. The
 * wait could be for ever: etcd3 retries a call whose auth token the member
 * does not know (a restarted member forgets simple tokens) from inside that
 * call, so when the trial was such a call, its retry waited for the trial,
 * which waited for its retry, and every later call to the member queued
 * behind them (an agent whose passes, registration and election all stopped
 * for good in the fault matrix's NOSPACE cell).
 */
const memberBreaker = () => {
  const breaker = circuitBreaker(handleType(etcd3.GRPCUnavailableError).orType(etcd3.GRPCDeadlineExceededError), {
    halfOpenAfter: 5_000,
    breaker: new ConsecutiveBreaker(3),
  });
  const execute = breaker.execute.bind(breaker);
  breaker.execute = (fn, signal) => (breaker.state === CircuitState.HalfOpen ? Promise.reject(new BrokenCircuitError()) : execute(fn, signal));
  return breaker;
};

export interface ClientHooks {
  /** gRPC interceptors for every unary call (src/metrics/etcd.ts times them) */
  interceptors?: Interceptor[];
}

/** gRPC keepalive ping interval on every etcd connection. */
export const KEEPALIVE_MS = 10_000;

/** Largest answer taken from etcd: room for 100,000-unit clusters, a bound on a runaway read. */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

/**
 * Creates a client (connections are opened lazily, on the first call).
 * Callers must close() it so the process can exit.
 * @throws FleetxError 'usage' when a TLS file cannot be read.
 */
export function connect(opts: ConnectionOptions, hooks: ClientHooks = {}): Etcd3 {
  const unary = hooks.interceptors?.length ? { interceptors: hooks.interceptors } : {};
  const options: IOptions = {
    hosts: opts.endpoints,
    // Unary calls get a deadline; streams (watch, lease keepalive) must not.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + opts.requestTimeoutMs, ...unary }),
    faultHandling: {
      host: memberBreaker,
      global: opts.endpoints.length > 1 ? retry(handleType(etcd3.GRPCUnavailableError), { maxAttempts: opts.endpoints.length - 1 }) : noop,
      // etcd3 waits up to 30 s before reopening a broken watch; agents must
      // see their schedule again within seconds of etcd coming back.
      // (etcd3 only calls .next() on it; its typings predate cockatiel 3.)
      watchBackoff: new ExponentialBackoff({ initialDelay: 200, maxDelay: 5000 }) as unknown as IBackoff<unknown>,
    },
    grpcOptions: {
      // gRPC's reconnect backoff grows to 120 s by default; same reason.
      'grpc.max_reconnect_backoff_ms': 2000,
      // A member that froze (SIGSTOP, a hung VM, a silent partition) sends no
      // reset: without pings a watch stream on it stays open and silent for
      // ever while the other members serve. Pings every 10 s while calls or
      // streams are open (etcd's default --grpc-keepalive-min-time is 5 s,
      // and it refuses pings with no stream open), 5 s to answer: a dead
      // connection is closed and etcd3 moves its watches to another member.
      'grpc.keepalive_time_ms': KEEPALIVE_MS,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 0,
      // gRPC refuses answers over 4 MiB by default, and the engine reads the
      // whole cluster in one transaction: at 10,000 units on 1,000 machines
      // its units and schedule keys are ~6 MB, and every pass failed for
      // good (bench:scale, issue 10). etcd itself sends answers of any size.
      'grpc.max_receive_message_length': MAX_ANSWER_BYTES,
    },
  };
  if (opts.caFile) {
    options.credentials = {
      rootCertificate: readTlsFile('CA file', opts.caFile),
      privateKey: opts.keyFile ? readTlsFile('client key', opts.keyFile) : undefined,
      certChain: opts.certFile ? readTlsFile('client certificate', opts.certFile) : undefined,
    };
  }
  if (opts.username !== undefined && opts.password !== undefined) {
    options.auth = { username: opts.username, password: opts.password };
  }
  return new etcd3.Etcd3(options);
}

function readTlsFile(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw usageError(`${what} ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
