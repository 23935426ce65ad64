/**
 * The few error kinds fleetx distinguishes. Adapters convert library errors
 * into these once, at the edge; the CLI's single handler maps them to exit
 * codes (see exitCodeOf). Nothing else inspects error messages.
 */
export type ErrorKind =
  | 'usage' // bad flags or arguments
  | 'invalid' // bad input content: unit file, template value, name
  | 'not-found' // a unit, template, machine or rollout that does not exist
  | 'conflict' // state disagrees: already exists with another body, lock held
  | 'unavailable' // etcd (or a host) cannot be reached in time
  | 'failed' // an operation ran and did not succeed (unit failed, rollout failed, not reverted)
  | 'reverted' // a rollout failed and auto-revert brought every instance back to the previous revision
  | 'aborted' // a rollout was aborted (fleetx rollout abort, or --on-abort=abort when the build was stopped)
  | 'timeout' // --timeout (or its default) ended the wait; what was started goes on
  | 'internal'; // a bug

export class FleetxError extends Error {
  readonly kind: ErrorKind;
  /** True when retrying the same call later may succeed. */
  readonly retryable: boolean;
  /** Optional human hint printed under the message. */
  readonly hint?: string;
  /** Overrides the kind's exit code, e.g. to pass on a remote command's status. */
  readonly exitCode?: number;
  /** Machine-readable facts for `-o json` errors, e.g. the lock's holder. */
  readonly details?: Record<string, unknown>;

  constructor(
    kind: ErrorKind,
    message: string,
    opts: { cause?: unknown; hint?: string; retryable?: boolean; exitCode?: number; details?: Record<string, unknown> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'FleetxError';
    this.kind = kind;
    this.hint = opts.hint;
    this.retryable = opts.retryable ?? kind === 'unavailable';
    this.exitCode = opts.exitCode;
    this.details = opts.details;
  }
}

export const usageError = (msg: string, hint?: string) => new FleetxError('usage', msg, { hint });
export const invalidError = (msg: string, hint?: string) => new FleetxError('invalid', msg, { hint });
export const notFoundError = (msg: string, hint?: string) => new FleetxError('not-found', msg, { hint });
export const conflictError = (msg: string, hint?: string) => new FleetxError('conflict', msg, { hint });
export const unavailableError = (msg: string, cause?: unknown) => new FleetxError('unavailable', msg, { cause });
export const failedError = (msg: string, hint?: string) => new FleetxError('failed', msg, { hint });

export function isFleetxError(e: unknown): e is FleetxError {
  return e instanceof FleetxError;
}

/**
 * Exit codes are part of the CLI's contract (documented in docs/CLI.md);
 * pipelines branch on them, so existing numbers never change meaning.
 * 1 is kept for "the operation failed" so scripts written for fleetctl,
 * which exited 1 on any error, keep working with `if ! fleetx ...`.
 * A deploy refused because another rollout holds the lock is 5 (conflict).
 */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  invalid: 3,
  'not-found': 4,
  conflict: 5,
  unavailable: 6,
  reverted: 7,
  aborted: 8,
  timeout: 9,
  internal: 70,
} as const;

/** The same error (kind, message, hint, details) exiting with another code. */
export function withExitCode(e: unknown, exitCode: number): FleetxError {
  if (!isFleetxError(e)) {
    const err = e instanceof Error ? e : new Error(String(e));
    return new FleetxError('internal', `internal error: ${err.message}`, { cause: e, exitCode });
  }
  return new FleetxError(e.kind, e.message, { cause: e.cause, hint: e.hint, retryable: e.retryable, details: e.details, exitCode });
}

export function exitCodeOf(e: unknown): number {
  if (!isFleetxError(e)) return EXIT.internal;
  return e.exitCode ?? EXIT[e.kind];
}

/**
 * Not an error: the exit status a command chose for a result that is not
 * plain success (e.g. `plan --detailed-exitcode` exits 2 when something
 * would change). The top-level handler exits with it and prints nothing.
 */
export class ExitStatus {
  constructor(readonly code: number) {}
}
