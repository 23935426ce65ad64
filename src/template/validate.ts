/**
 * Checks on the values themselves, before rendering: names of map keys
 * (they are printed raw by `{{@key}}`, so they must be plain identifiers)
 * and names that look like secrets, which must never end up in unit text.
 */
import { invalidError } from '../errors/errors.js';

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
/** Names of values that hold credentials. Matched on the key, at any depth. */
export const SECRET_NAME_RE = /api[_-]?key|secret|passw(?:or)?d|token|private[_-]?key|credential/i;

const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);

export const SECRETS_DIR = '/etc/fleetx/secrets';

export function validateValues(values: Record<string, unknown>, templateName: string): void {
  const problems: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        const p = path ? `${path}.${k}` : k;
        if (!KEY_RE.test(k) || RESERVED.has(k)) problems.push(`value name ${JSON.stringify(p)} is not allowed: names must match ${KEY_RE.source}`);
        else if (SECRET_NAME_RE.test(k)) {
          problems.push(
            `value ${p} looks like a secret; unit text is stored in etcd and shown by \`fleetx cat\`, so secrets must not be rendered into it. ` +
              `Put it in ${SECRETS_DIR}/<unit>.env on each host (mode 0600); the unit reads that file (EnvironmentFile= or --env-file)`,
          );
        }
        walk(x, p);
      }
    }
  };
  walk(values, '');
  if (problems.length > 0) throw invalidError(`template ${templateName}: ${problems.join('; ')}`);
}
