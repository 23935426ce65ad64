/**
 * Catching fleetx's typed errors in tests: the FleetxError a call throws
 * (or a promise rejects with). Any other error is rethrown as it is, and a
 * call that does not fail fails the test.
 */
import { expect } from 'vitest';
import { FleetxError, type ErrorKind } from '../../src/errors/errors.js';

/** The FleetxError `fn` throws; with `kind`, also asserts its kind. */
export function errorOf(fn: () => unknown, kind?: ErrorKind): FleetxError {
  try {
    fn();
  } catch (e) {
    return checked(e, kind);
  }
  throw new Error('expected a FleetxError, got success');
}

/** The FleetxError `p` rejects with; with `kind`, also asserts its kind. */
export async function rejection(p: Promise<unknown>, kind?: ErrorKind): Promise<FleetxError> {
  try {
    await p;
  } catch (e) {
    return checked(e, kind);
  }
  throw new Error('expected a rejection with a FleetxError, got success');
}

function checked(e: unknown, kind?: ErrorKind): FleetxError {
  if (!(e instanceof FleetxError)) throw e;
  if (kind !== undefined) expect(e.kind, e.message).toBe(kind);
  return e;
}

/** The FleetxError of kind `invalid` that `fn` throws (bad unit text, names, values). */
export const invalid = (fn: () => unknown): FleetxError => errorOf(fn, 'invalid');
