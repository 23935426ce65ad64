/**
 * The agent's side: one EnvironmentFile per unit that names secrets, under
 * /run/fleetx/secrets (directory 0700, files 0600, owner root), written
 * before the agent starts the unit and kept equal to the stored values.
 *
 * sync() is called at every reconcile pass with the units scheduled here:
 *  - a unit whose secrets all have values gets its file (rewritten only
 *    when the text differs; atomic rename, so a unit starting meanwhile
 *    reads the old or the new file, never half of one);
 *  - a unit with a secret that is not set (or not readable) has no file, so
 *    its start fails (EnvironmentFile= without `-`) rather than running
 *    without the secret; the missing names are reported, never values;
 *  - a file of a unit no longer scheduled here is removed.
 * A rewritten file takes effect at the unit's next start: rotating a secret
 * never restarts anything by itself (see README.md).
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseUnit } from '../unit/parse.js';
import { envFileText } from './env-file.js';
import { referencedSecrets, secretReferences, SECRETS_RUN_DIR, type SecretReference } from './references.js';
import type { SecretValues } from './store.js';

export interface ScheduledUnit {
  name: string;
  /** the unit text; undefined while its body is not fetched (its file is then left as it is) */
  text?: string;
}

export interface SecretSyncReport {
  /** units whose file was written (new or changed) */
  written: string[];
  /** units whose file was removed (no longer scheduled here, or a secret gone) */
  removed: string[];
  /** units that name secrets without a value, with those names */
  missing: Array<{ unit: string; secrets: string[] }>;
  /** units whose [X-Fleet-Secrets] section is malformed (submit refuses those; an older body may carry one) */
  invalid: Array<{ unit: string; message: string }>;
}

const SUFFIX = '.env';

export class SecretFiles {
  constructor(
    private readonly store: SecretValues,
    private readonly dir = SECRETS_RUN_DIR,
  ) {}

  /**
   * Makes the directory match the units. etcd errors (including a user
   * that may not read the values) propagate: the pass is then retried, and
   * no file is removed on a failed read.
   */
  async sync(units: readonly ScheduledUnit[]): Promise<SecretSyncReport> {
    const report: SecretSyncReport = { written: [], removed: [], missing: [], invalid: [] };
    const wanted = new Map<string, SecretReference[]>();
    const keep = new Set<string>();
    for (const u of units) {
      if (u.text === undefined) {
        keep.add(u.name);
        continue;
      }
      try {
        const refs = secretReferences(parseUnit(u.text, u.name), u.name);
        if (refs.length > 0) wanted.set(u.name, refs);
      } catch (e) {
        report.invalid.push({ unit: u.name, message: (e as Error).message });
      }
    }
    const values = wanted.size > 0 ? await this.store.values(referencedSecrets(wanted.values())) : new Map<string, string>();

    if (wanted.size > 0) this.ensureDir();
    for (const [unit, refs] of [...wanted].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const plan = envFileText(refs, values);
      if (plan.text === undefined) {
        report.missing.push({ unit, secrets: plan.missing });
        continue;
      }
      keep.add(unit);
      if (this.read(unit) !== plan.text) {
        this.write(unit, plan.text);
        report.written.push(unit);
      }
    }
    for (const unit of this.present()) {
      if (keep.has(unit)) continue;
      rmSync(this.path(unit), { force: true });
      report.removed.push(unit);
    }
    return report;
  }

  private path(unit: string): string {
    return join(this.dir, `${unit}${SUFFIX}`);
  }

  private ensureDir(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700); // an existing directory keeps its mode otherwise
  }

  private read(unit: string): string | undefined {
    try {
      return readFileSync(this.path(unit), 'utf8');
    } catch {
      return undefined;
    }
  }

  private write(unit: string, text: string): void {
    const tmp = join(this.dir, `.${unit}${SUFFIX}.tmp`);
    // mode at creation: the value is never in a file others could open, even for a moment
    writeFileSync(tmp, text, { mode: 0o600 });
    chmodSync(tmp, 0o600); // a leftover tmp file keeps its old mode otherwise
    renameSync(tmp, this.path(unit));
  }

  /** Units that have a file now. */
  private present(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names.filter((n) => n.endsWith(SUFFIX) && !n.startsWith('.')).map((n) => n.slice(0, -SUFFIX.length));
  }
}
