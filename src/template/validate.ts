/**
 * Checks on the values themselves, before rendering: names of map keys
 * (they are printed raw by `{{@key}}`, so they must be plain identifiers)
 * and values that are, or look like, secrets, which must never end up in unit
 * text: it is stored in etcd and shown by `fleetx cat`, `plan` diffs (CI
 * logs) and `systemctl cat` on every host. Secrets go through `fleetx secret`
 * (src/secrets/README.md); a template refers to them by name.
 */
import { invalidError } from '../errors/errors.js';
import { ENV_NAME_RE, SECRET_NAME_RE as SECRET_ID_RE } from '../secrets/names.js';
import { looksLikeSecretName, namesAPointer, secretShapeOf } from './secret-shapes.js';

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
/** Names of values that hold credentials. Matched on the key, at any depth. */
export const SECRET_NAME_RE = /api[_-]?key|secret|passw(?:or)?d|token|private[_-]?key|credential/i;

/**
 * The one value that may mention secrets: `secretEnv: { ENV_VAR: secret-name }`.
 * Its entries are references, rendered into [X-Fleet-Secrets]; a value that is
 * not a secret name is refused, so a real secret cannot hide there either.
 */
export const SECRET_REFERENCES_KEY = 'secretEnv';

const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);

const HOW = 'store it with `printf %s "$VALUE" | fleetx secret set NAME` and name it in the unit\'s [X-Fleet-Secrets] section (ENV_VAR=NAME), '
  + 'with EnvironmentFile=/run/fleetx/secrets/%n.env in [Service]; see src/secrets/README.md';

export function validateValues(values: Record<string, unknown>, templateName: string): void {
  const problems: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        const p = path ? `${path}.${k}` : k;
        if (!KEY_RE.test(k) || RESERVED.has(k)) problems.push(`value name ${JSON.stringify(p)} is not allowed: names must match ${KEY_RE.source}`);
        else if (p === SECRET_REFERENCES_KEY) checkReferences(x, problems);
        else if ((SECRET_NAME_RE.test(k) && !namesAPointer(k)) || looksLikeSecretName(k)) problems.push(`value ${p} looks like a secret by its name: unit text is stored in etcd and shown by \`fleetx cat\` and \`plan\`, so ${HOW}`);
        else walk(x, p);
      }
    } else if (typeof v === 'string') {
      const shape = secretShapeOf(v);
      if (shape) problems.push(`value ${path || '(top)'} holds what looks like ${shape}: unit text is stored in etcd and shown by \`fleetx cat\` and \`plan\`, so ${HOW}`);
    }
  };
  walk(values, '');
  if (problems.length > 0) throw invalidError(`template ${templateName}: ${problems.join('; ')}`);
}

function checkReferences(v: unknown, problems: string[]): void {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    problems.push(`value ${SECRET_REFERENCES_KEY} must map environment variables to secret names, e.g. ${SECRET_REFERENCES_KEY}.DD_API_KEY=dd-api-key`);
    return;
  }
  for (const [env, name] of Object.entries(v)) {
    if (!ENV_NAME_RE.test(env)) problems.push(`value ${SECRET_REFERENCES_KEY}.${env}: not an environment variable name`);
    else if (typeof name !== 'string' || !SECRET_ID_RE.test(name)) {
      problems.push(`value ${SECRET_REFERENCES_KEY}.${env} must be the NAME of a secret (lowercase letters, digits, ".", "_", "-"), never its value`);
    }
  }
}
