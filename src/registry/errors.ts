/**
 * The one place where etcd3 (and gRPC) errors become FleetxErrors. Every
 * registry method funnels its failures through toFleetxError, so callers
 * only ever see the few kinds of src/errors/errors.ts:
 *
 *   no answer / refused / circuit open     -> unavailable (retryable)
 *   TLS handshake rejected                 -> unavailable (not retryable, hint about --ca-file etc.)
 *   wrong or missing credentials           -> usage
 *   permission denied                      -> usage
 *   lock held, STM conflict                -> conflict
 *   a transaction over --max-txn-ops       -> invalid (too large a change; says how to split it)
 *   NOSPACE alarm (quota exceeded)         -> unavailable, named, with the operator's way out
 *   request etcd calls malformed           -> internal (a bug in fleetx)
 *   other server-side errors               -> unavailable (etcd's own transient errors)
 *   anything else                          -> internal
 *
 * gRPC reports connection failures as UNAVAILABLE with the cause only in the
 * text ("Last error: ..."); that text is read here and nowhere else.
 */
import { FleetxError, isFleetxError } from '../errors/errors.js';
import type { ConnectionOptions } from './connection.js';
import { cockatiel, etcd3 } from './libraries.js';

const { isBrokenCircuitError } = cockatiel;
const {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdError,
  EtcdInvalidAuthTokenError,
  EtcdLeaseInvalidError,
  EtcdLockFailedError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCGenericError,
  GRPCInvalidArgumentError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
  STMConflictError,
} = etcd3;

/** What error messages need to know about the connection. */
export type ErrorContext = Pick<ConnectionOptions, 'endpoints' | 'requestTimeoutMs' | 'username' | 'prefix'>;

/** Converts anything thrown by etcd3 into a FleetxError; FleetxErrors pass through. */
export function toFleetxError(e: unknown, opts: ErrorContext): FleetxError {
  if (isFleetxError(e)) return e;
  const at = `etcd at ${opts.endpoints.join(', ')}`;
  const within = formatSeconds(opts.requestTimeoutMs);
  const credHint = 'check --etcd-username/--etcd-password (FLEETX_ETCD_USERNAME/FLEETX_ETCD_PASSWORD)';

  if (e instanceof GRPCDeadlineExceededError) {
    return new FleetxError('unavailable', `${at} is unreachable (no answer within ${within})`, {
      cause: e,
      hint: 'is etcd running there? raise --request-timeout if it is just slow',
    });
  }
  if (e instanceof GRPCUnavailableError) {
    const detail = lastError(e.message);
    if (/SSL|TLS|certificate/i.test(detail)) {
      return new FleetxError('unavailable', `${at} rejected the TLS connection: ${detail}`, {
        cause: e,
        retryable: false,
        hint: 'check --ca-file, --cert-file and --key-file (etcd may require a client certificate)',
      });
    }
    return new FleetxError('unavailable', `${at} is unreachable (${detail})`, { cause: e });
  }
  if (isBrokenCircuitError(e)) {
    return new FleetxError('unavailable', `${at} is unreachable (recent calls failed; will retry shortly)`, { cause: e });
  }
  if (e instanceof EtcdAuthenticationFailedError) {
    return new FleetxError('usage', `etcd rejected the credentials for user ${opts.username ?? '(none)'}`, { cause: e, hint: credHint });
  }
  if (
    opts.username === undefined &&
    (e instanceof GRPCUnauthenticatedError ||
      e instanceof EtcdInvalidAuthTokenError ||
      (e instanceof GRPCInvalidArgumentError && /user name is empty/.test(e.message)))
  ) {
    return new FleetxError('usage', `${at} requires authentication`, { cause: e, hint: credHint });
  }
  if (e instanceof EtcdPermissionDeniedError) {
    return new FleetxError('usage', `etcd user ${opts.username ?? '(none)'} may not access keys under ${opts.prefix} (permission denied)`, {
      cause: e,
      hint: `grant the user a role with readwrite on ${opts.prefix}/`,
    });
  }
  if (e instanceof EtcdLockFailedError || e instanceof STMConflictError) {
    return new FleetxError('conflict', `etcd: ${e.message}`, { cause: e });
  }
  if (e instanceof EtcdLeaseInvalidError) {
    return new FleetxError('unavailable', `etcd lease expired or unknown (${e.message})`, { cause: e });
  }
  if (e instanceof ClientClosedError) {
    return new FleetxError('internal', `etcd client used after close: ${e.message}`, { cause: e });
  }
  if (e instanceof GRPCInvalidArgumentError && /too many operations in txn request/.test(e.message)) {
    // one change that must stay whole is larger than etcd's --max-txn-ops (128 by default)
    return new FleetxError('invalid', `${at} refused the change: it is larger than one etcd transaction may be (${stripCode(e.message)})`, {
      cause: e,
      hint: 'change fewer units at once (a service has at most 100 instances; see docs/ROLLOUT.md), or raise etcd\'s --max-txn-ops',
    });
  }
  if (e instanceof GRPCGenericError && /database space exceeded/.test(e.message)) {
    // A member's backend outgrew its quota: etcd raised the NOSPACE alarm and
    // every member refuses writes (reads, deletes, compaction still work)
    // until an operator frees space and disarms it. Retryable: fleetx's loops
    // resume by themselves once it is disarmed.
    return new FleetxError('unavailable', `${at} refuses writes: it is out of space (NOSPACE alarm: ${stripCode(e.message)})`, {
      cause: e,
      hint: 'an operator must free space: `etcdctl compaction`, `etcdctl defrag` (or a larger --quota-backend-bytes), then `etcdctl alarm disarm`; see docs/RELIABILITY.md',
    });
  }
  if (e instanceof GRPCInvalidArgumentError) {
    // we sent a request etcd refuses ("too many operations in txn request"): a bug here
    return new FleetxError('internal', `${at} refused a malformed request: ${stripCode(e.message)}`, { cause: e });
  }
  if (e instanceof EtcdError || e instanceof GRPCGenericError) {
    // "etcdserver: request timed out", "leader changed", "too many requests", quota...
    return new FleetxError('unavailable', `${at} failed the request: ${stripCode(e.message)}`, { cause: e });
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new FleetxError('internal', `unexpected error talking to etcd: ${msg}`, { cause: e });
}

/** "14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED ... (date). Resolution note: " */
function lastError(message: string): string {
  const m = /Last error: (?:Error: )?(.*?)(?:\s*\(\d{4}-\d\d-\d\dT[^)]*\))?\.?\s*(?:Resolution note:.*)?$/s.exec(message);
  const detail = (m?.[1] ?? stripCode(message)).split('\n')[0]!.trim();
  if (/ECONNREFUSED/.test(detail)) return 'connection refused';
  if (/Failed to connect/.test(detail)) return 'failed to connect; is it https?';
  return detail || 'connection failed';
}

const stripCode = (m: string) => m.replace(/^\d+ [A-Z_]+: /, '');

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}
