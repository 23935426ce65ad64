/**
 * What a secret is called and what it may hold. Pure.
 *
 * Names are lowercase words (`dd-api-key`, `db.password`): they appear in
 * etcd keys, in units' [X-Fleet-Secrets] sections and in `fleetx secret list`,
 * never anything that needs quoting. Values are one line: they reach units as
 * environment variables through an EnvironmentFile, where a newline would end
 * the assignment.
 */
import { invalidError } from '../errors/errors.js';

export const SECRET_NAME_RE = /^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$/;
/** An environment variable a secret is given to a unit as (POSIX portable name). */
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** etcd's default request limit is 1.5 MiB; a secret far below it. */
export const SECRET_VALUE_MAX = 64 * 1024;

/** @throws FleetxError 'invalid' naming the rule. */
export function checkSecretName(name: string): string {
  if (!SECRET_NAME_RE.test(name)) {
    throw invalidError(
      `secret name ${JSON.stringify(name)} is not allowed`,
      'use 1-63 lowercase letters, digits, ".", "_" or "-", starting and ending with a letter or digit (e.g. dd-api-key)',
    );
  }
  return name;
}

/**
 * The value as stored: one trailing newline (from `echo` or a file's last
 * line) is dropped; anything else that cannot sit in one environment
 * variable is refused. The message never quotes the value.
 * @throws FleetxError 'invalid'
 */
export function normalizeSecretValue(raw: string): string {
  const value = raw.replace(/\r?\n$/, '');
  if (value === '') throw invalidError('the secret value is empty', 'give the value on stdin (printf %s "$VALUE" | fleetx secret set NAME) or with --from-file');
  if (Buffer.byteLength(value, 'utf8') > SECRET_VALUE_MAX) throw invalidError(`the secret value is larger than ${SECRET_VALUE_MAX / 1024} KiB`);
  // eslint-disable-next-line no-control-regex
  const bad = /[\u0000-\u0008\u000a-\u001f\u007f]/.exec(value);
  if (bad) {
    const what = bad[0] === '\n' ? 'a line break' : `a control character (U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0')})`;
    throw invalidError(`the secret value contains ${what}`, 'secrets reach units as one environment variable: store one line (base64-encode binary or multi-line values)');
  }
  return value;
}
