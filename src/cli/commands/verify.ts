/**
 * verify: check unit files before they are submitted. Per file: the unit
 * name (taken from the file name), the syntax, the [X-Fleet] options, and
 * when /usr/bin/systemd-analyze exists, `systemd-analyze verify` on a copy
 * with the right name in a private temp dir.
 *
 * systemd-analyze checks against THIS machine: a unit for container hosts
 * names /usr/bin/docker and docker.service, which a CI or workstation may
 * lack. Those two complaints (missing executable, missing dependency unit)
 * are reported as warnings; everything else it prints is an error, as are
 * complaints about lines of the unit. All files are checked, then the
 * command fails once, listing every problem.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { invalidError, isFleetxError } from '../../errors/errors.js';
import { secretReferences } from '../../secrets/references.js';
import { parseUnitName } from '../../unit/name.js';
import { parseUnit } from '../../unit/parse.js';
import { unrunnableProblems } from '../../unit/runnable.js';
import { parseXFleet } from '../../unit/xfleet.js';
import type { Io, OutputFormat } from '../io.js';

export const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const ANALYZE_TIMEOUT_MS = 30_000;

export interface VerifyCommandOptions {
  files: string[];
  /** Run systemd-analyze verify when available (default true). */
  systemdAnalyze?: boolean;
  output: OutputFormat;
}

export interface FileResult {
  file: string;
  ok: boolean;
  errors: string[];
  warnings: string[];
}

const messageOf = (e: unknown) => (isFleetxError(e) || e instanceof Error ? e.message : String(e));

/** Syntax, name and [X-Fleet] checks; no I/O. */
export function checkUnitText(fileName: string, text: string): string[] {
  const name = basename(fileName);
  if (name.endsWith('.hbs')) {
    return [`${name} is a template; render it first (fleetx render ${name.replace(/\.hbs$/, '')} --out FILE) and verify the result`];
  }
  const errors: string[] = [];
  try {
    parseUnitName(name);
  } catch (e) {
    errors.push(`file name: ${messageOf(e)}`);
  }
  let unit;
  try {
    unit = parseUnit(text, fileName);
  } catch (e) {
    errors.push(messageOf(e));
  }
  if (unit && errors.length === 0) {
    try {
      parseXFleet(unit, name);
    } catch (e) {
      errors.push(messageOf(e));
    }
    errors.push(...unrunnableProblems(unit, parseUnitName(name).type));
    try {
      secretReferences(unit, name);
    } catch (e) {
      errors.push(messageOf(e));
    }
  }
  return errors;
}

/** Sorts systemd-analyze output into errors and warnings (see the header comment). */
export function classifyAnalyzeOutput(output: string, exitCode: number, copyPath: string, fileName: string): { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const raw of output.split('\n')) {
    const trimmed = raw.trim();
    if (trimmed === '') continue;
    if (trimmed.startsWith('/') && !trimmed.startsWith(copyPath)) continue; // about another unit file on this machine
    const line = trimmed.replaceAll(copyPath, fileName);
    let m: RegExpExecArray | null;
    if ((m = /Command (\S+) is not executable: No such file or directory/.exec(line))) {
      warnings.push(`${m[1]} does not exist on this machine (systemd-analyze)`);
    } else if ((m = /Unit (\S+) not found\.?$/.exec(line))) {
      warnings.push(`dependency ${m[1]} is not installed on this machine (systemd-analyze)`);
    } else errors.push(`systemd-analyze: ${line}`);
  }
  if (exitCode !== 0 && errors.length === 0 && warnings.length === 0) errors.push(`systemd-analyze verify exited with status ${exitCode}`);
  return { errors: [...new Set(errors)], warnings: [...new Set(warnings)] };
}

function runAnalyze(path: string): Promise<{ code: number; output: string; timedOut: boolean }> {
  return new Promise((resolvePromise) => {
    execFile(
      SYSTEMD_ANALYZE,
      ['verify', '--man=no', path],
      { timeout: ANALYZE_TIMEOUT_MS, env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_PAGER: 'cat' } },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; killed?: boolean }) | null;
        resolvePromise({
          code: e ? (typeof e.code === 'number' ? e.code : 1) : 0,
          output: `${stdout}\n${stderr}`,
          timedOut: Boolean(e?.killed),
        });
      },
    );
  });
}

/** systemd-analyze verify on a copy named after the unit. */
export async function analyzeUnit(fileName: string, text: string): Promise<{ errors: string[]; warnings: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetx-verify-'));
  try {
    const copy = join(dir, basename(fileName));
    writeFileSync(copy, text);
    const r = await runAnalyze(copy);
    if (r.timedOut) return { errors: [], warnings: [`systemd-analyze verify did not finish in ${ANALYZE_TIMEOUT_MS / 1000}s; not checked by it`] };
    return classifyAnalyzeOutput(r.output, r.code, copy, fileName);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function verifyFile(file: string, cwd: string, useAnalyze: boolean): Promise<FileResult> {
  let text: string;
  try {
    text = readFileSync(resolve(cwd, file), 'utf8');
  } catch (e) {
    return { file, ok: false, errors: [`cannot read: ${(e as NodeJS.ErrnoException).code ?? messageOf(e)}`], warnings: [] };
  }
  const errors = checkUnitText(file, text);
  const warnings: string[] = [];
  if (errors.length === 0 && useAnalyze) {
    const a = await analyzeUnit(file, text);
    errors.push(...a.errors);
    warnings.push(...a.warnings);
  }
  return { file, ok: errors.length === 0, errors, warnings };
}

/** Throws FleetxError 'invalid' listing every problem of every file, after checking all of them. */
export async function verifyCommand(opts: VerifyCommandOptions, io: Io): Promise<void> {
  const useAnalyze = opts.systemdAnalyze !== false && existsSync(SYSTEMD_ANALYZE);
  const results: FileResult[] = [];
  for (const f of opts.files) results.push(await verifyFile(f, io.cwd, useAnalyze));

  if (opts.output === 'json') io.stdout(JSON.stringify({ schema: 'fleetx/verify/v1', systemdAnalyze: useAnalyze, results }));
  else {
    for (const r of results) {
      for (const w of r.warnings) io.stderr(`warning: ${r.file}: ${w}`);
      if (r.ok) io.stdout(`OK ${r.file}`);
    }
  }
  const bad = results.filter((r) => !r.ok);
  if (bad.length > 0) {
    const lines = bad.flatMap((r) => r.errors.map((e) => `  ${r.file}: ${e}`));
    throw invalidError(`${bad.length} of ${results.length} unit file${results.length > 1 ? 's' : ''} failed verification:\n${lines.join('\n')}`);
  }
}
