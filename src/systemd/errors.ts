import { DBusError } from 'dbus-next';
import { FleetxError, isFleetxError } from '../errors/errors.js';

/** D-Bus error names that mean "the other side is not there (yet)". */
const UNAVAILABLE = new Set([
  'org.freedesktop.DBus.Error.NoReply',
  'org.freedesktop.DBus.Error.Disconnected',
  'org.freedesktop.DBus.Error.ServiceUnknown',
  'org.freedesktop.DBus.Error.NameHasNoOwner',
  'org.freedesktop.DBus.Error.Timeout',
  'org.freedesktop.DBus.Error.TimedOut',
  'org.freedesktop.DBus.Error.LimitsExceeded',
]);

const NOT_FOUND = new Set([
  'org.freedesktop.systemd1.NoSuchUnit',
  'org.freedesktop.systemd1.NoSuchJob',
  'org.freedesktop.DBus.Error.FileNotFound',
  'org.freedesktop.DBus.Error.UnknownObject',
]);

const INVALID = new Set(['org.freedesktop.DBus.Error.InvalidArgs']);

const CONFLICT = new Set([
  'org.freedesktop.systemd1.UnitMasked',
  'org.freedesktop.systemd1.TransactionIsDestructive',
  'org.freedesktop.systemd1.TransactionJobsConflicting',
]);

/** The D-Bus error name of e, if it is a D-Bus error reply. */
export function dbusErrorName(e: unknown): string | undefined {
  return e instanceof DBusError ? e.type : undefined;
}

/**
 * The one place library errors become FleetxErrors. `what` names the
 * operation for the message, e.g. "StartUnit(app.service)".
 */
export function toFleetxError(e: unknown, what: string): FleetxError {
  if (isFleetxError(e)) return e;
  const name = dbusErrorName(e);
  if (name !== undefined) {
    const text = `${what}: ${(e as DBusError).text || name}`;
    if (UNAVAILABLE.has(name)) return new FleetxError('unavailable', text, { cause: e });
    if (NOT_FOUND.has(name)) return new FleetxError('not-found', text, { cause: e });
    if (INVALID.has(name)) return new FleetxError('invalid', text, { cause: e });
    if (CONFLICT.has(name)) return new FleetxError('conflict', text, { cause: e });
    return new FleetxError('failed', `${text} (${name})`, { cause: e });
  }
  // Socket errors (ENOENT, ECONNREFUSED, EPIPE...) and closed streams.
  const msg = e instanceof Error ? e.message : String(e);
  return new FleetxError('unavailable', `${what}: systemd D-Bus connection failed: ${msg}`, { cause: e });
}
