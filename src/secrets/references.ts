/**
 * How a unit asks for secrets. Pure.
 *
 *   [Service]
 *   EnvironmentFile=/run/fleetx/secrets/%n.env
 *   ExecStart=/usr/bin/podman run --env DD_API_KEY ... image
 *
 *   [X-Fleet-Secrets]
 *   DD_API_KEY=dd-api-key
 *
 * Each option of [X-Fleet-Secrets] is `ENV_VAR=secret-name`. The agent
 * writes `/run/fleetx/secrets/<unit>.env` (0600, root) with the values
 * before it starts the unit; the unit text only names the secret. The
 * EnvironmentFile= line must be there, without `-`, so a unit whose secret
 * is missing fails to start instead of running without it.
 */
import { invalidError } from '../errors/errors.js';
import { optionValues } from '../unit/options.js';
import type { UnitFile } from '../unit/types.js';
import { ENV_NAME_RE, SECRET_NAME_RE } from './names.js';

export const SECRETS_SECTION = 'X-Fleet-Secrets';
/** Root-only, on tmpfs: gone at reboot, written again by the agent before units start. */
export const SECRETS_RUN_DIR = '/run/fleetx/secrets';
/** The line a unit that uses secrets must carry in its [Service] section. */
export const SECRETS_ENV_FILE = `${SECRETS_RUN_DIR}/%n.env`;

export interface SecretReference {
  /** environment variable the unit sees */
  env: string;
  /** name of the secret (`fleetx secret set NAME`) */
  secret: string;
}

/** The env file of one unit (its full name, as systemd's %n). */
export function secretEnvFile(unit: string, dir = SECRETS_RUN_DIR): string {
  return `${dir}/${unit}.env`;
}

/**
 * The unit's secret references, in order (an env var given twice keeps the last).
 * @throws FleetxError 'invalid' listing every problem: a bad variable or
 *         secret name, or the EnvironmentFile= line missing.
 */
export function secretReferences(u: UnitFile, unitName: string): SecretReference[] {
  const refs = new Map<string, string>();
  const problems: string[] = [];
  for (const o of u.options) {
    if (o.section !== SECRETS_SECTION) continue;
    if (!ENV_NAME_RE.test(o.name)) problems.push(`${o.name} is not an environment variable name (${ENV_NAME_RE.source})`);
    else if (!SECRET_NAME_RE.test(o.value)) problems.push(`${o.name}=${o.value}: ${JSON.stringify(o.value)} is not a secret name (lowercase letters, digits, ".", "_", "-")`);
    else refs.set(o.name, o.value);
  }
  if (u.options.some((o) => o.section === SECRETS_SECTION)) {
    const files = optionValues(u, 'Service', 'EnvironmentFile');
    if (!files.includes(SECRETS_ENV_FILE)) {
      problems.push(`it names secrets but its [Service] section lacks EnvironmentFile=${SECRETS_ENV_FILE}`);
    }
  }
  if (problems.length > 0) {
    throw invalidError(
      `${unitName}: [${SECRETS_SECTION}] ${problems.join('; ')}`,
      `each line is ENV_VAR=secret-name, and the unit reads the values with EnvironmentFile=${SECRETS_ENV_FILE} (see src/secrets/README.md)`,
    );
  }
  return [...refs].map(([env, secret]) => ({ env, secret }));
}

/** Every secret name the units refer to, sorted, once each. */
export function referencedSecrets(refs: Iterable<readonly SecretReference[]>): string[] {
  const names = new Set<string>();
  for (const list of refs) for (const r of list) names.add(r.secret);
  return [...names].sort();
}
