// toFleetxError over etcd3's own error classes (constructed directly, as
// etcd3 constructs them from gRPC statuses; the live cases are covered in
// registry-connection.test.ts, registry-tls.test.ts and registry-auth.test.ts).
import { BrokenCircuitError } from 'cockatiel';
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdError,
  EtcdLockFailedError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCInvalidArgumentError,
  GRPCUnavailableError,
} from 'etcd3';
import { describe, expect, it } from 'vitest';
import { FleetxError, type ErrorKind } from '../../src/errors/errors.js';
import { toFleetxError, type ErrorContext } from '../../src/registry/errors.js';

const ctx: ErrorContext = { endpoints: ['http://127.0.0.1:2399'], requestTimeoutMs: 5000, prefix: '/fleetx', username: 'fleetx' };
const anon: ErrorContext = { ...ctx, username: undefined };

describe('toFleetxError', () => {
  it.each<[string, unknown, ErrorContext, ErrorKind, string | RegExp]>([
    ['deadline', new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded after 5.001s'), ctx, 'unavailable', 'etcd at http://127.0.0.1:2399 is unreachable (no answer within 5s)'],
    [
      'refused',
      new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2399. Resolution note: '),
      ctx,
      'unavailable',
      'etcd at http://127.0.0.1:2399 is unreachable (connection refused)',
    ],
    [
      'TLS',
      new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: Error: unable to verify the first certificate. Resolution note: '),
      ctx,
      'unavailable',
      'etcd at http://127.0.0.1:2399 rejected the TLS connection: unable to verify the first certificate',
    ],
    ['circuit open', new BrokenCircuitError(), ctx, 'unavailable', /is unreachable \(recent calls failed/],
    ['bad password', new EtcdAuthenticationFailedError('etcdserver: authentication failed, invalid user ID or password'), ctx, 'usage', 'etcd rejected the credentials for user fleetx'],
    ['no user', new GRPCInvalidArgumentError('3 INVALID_ARGUMENT: etcdserver: user name is empty'), anon, 'usage', 'etcd at http://127.0.0.1:2399 requires authentication'],
    ['permission', new EtcdPermissionDeniedError('etcdserver: permission denied'), ctx, 'usage', 'etcd user fleetx may not access keys under /fleetx (permission denied)'],
    ['lock', new EtcdLockFailedError('Failed to acquire a lock on /x'), ctx, 'conflict', /lock/],
    ['server-side transient', new EtcdError('etcdserver: leader changed'), ctx, 'unavailable', 'etcd at http://127.0.0.1:2399 failed the request: etcdserver: leader changed'],
    ['a transaction over --max-txn-ops', new GRPCInvalidArgumentError('3 INVALID_ARGUMENT: etcdserver: too many operations in txn request'), ctx, 'invalid', /refused the change: it is larger than one etcd transaction may be \(etcdserver: too many operations in txn request\)/],
    ['malformed request', new GRPCInvalidArgumentError('3 INVALID_ARGUMENT: etcdserver: key is not provided'), ctx, 'internal', /refused a malformed request: etcdserver: key is not provided/],
    ['closed client', new ClientClosedError('KV'), ctx, 'internal', /after close/],
    ['anything else', new TypeError('boom'), ctx, 'internal', 'unexpected error talking to etcd: boom'],
  ])('%s', (_d, err, c, kind, message) => {
    const e = toFleetxError(err, c);
    expect(e.kind).toBe(kind);
    if (typeof message === 'string') expect(e.message).toBe(message);
    else expect(e.message).toMatch(message);
    expect(e.cause).toBe(err);
  });

  it('passes FleetxErrors through untouched', () => {
    const original = new FleetxError('conflict', 'x');
    expect(toFleetxError(original, ctx)).toBe(original);
  });

  it('formats fractional timeouts', () => {
    expect(toFleetxError(new GRPCDeadlineExceededError('x'), { ...ctx, requestTimeoutMs: 250 }).message).toMatch(/within 0\.25s\)$/);
  });
});
