/**
 * A rollout report as JUnit XML, the format Jenkins (junit step), GitLab and
 * GitHub test reporters read: one test suite per command, a test case for
 * the rollout as a whole and one per instance, so the build page shows
 * which instance failed and why. Pure.
 */
import type { InstanceReport, RolloutReport } from './report.js';

interface Case {
  name: string;
  seconds?: number;
  failure?: { type: string; message: string };
  skipped?: string;
}

export function junitXml(r: RolloutReport): string {
  const suite = `fleetx ${r.command}${r.service ? ` ${r.service}` : ''}`;
  const cls = `fleetx.${r.command}.${r.service ?? 'unknown'}`;
  const cases = [rolloutCase(r, suite), ...r.instances.map((i) => instanceCase(i, r))];
  const failures = cases.filter((c) => c.failure).length;
  const skipped = cases.filter((c) => c.skipped !== undefined).length;
  const seconds = Math.max(0, (Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000);
  const props: Array<[string, string | number | undefined]> = [
    ['outcome', r.outcome],
    ['exitCode', r.exitCode],
    ['rollout', r.rollout?.id],
    ['fromRevision', r.rollout?.fromRevision],
    ['toRevision', r.rollout?.toRevision],
    ['holder', r.rollout ? `${r.rollout.holder.user}@${r.rollout.holder.host}` : undefined],
    ['build', r.rollout?.holder.build],
  ];
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="fleetx" tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${seconds.toFixed(3)}">`,
    `  <testsuite name="${esc(suite)}" tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${seconds.toFixed(3)}" timestamp="${esc(r.startedAt)}">`,
    '    <properties>',
    ...props.filter(([, v]) => v !== undefined).map(([k, v]) => `      <property name="${k}" value="${esc(String(v))}"/>`),
    '    </properties>',
  ];
  for (const c of cases) {
    const open = `    <testcase classname="${esc(cls)}" name="${esc(c.name)}"${c.seconds !== undefined ? ` time="${c.seconds.toFixed(3)}"` : ''}`;
    if (c.failure) lines.push(`${open}>`, `      <failure type="${esc(c.failure.type)}" message="${esc(c.failure.message)}">${esc(c.failure.message)}</failure>`, '    </testcase>');
    else if (c.skipped !== undefined) lines.push(`${open}>`, `      <skipped message="${esc(c.skipped)}"/>`, '    </testcase>');
    else lines.push(`${open}/>`);
  }
  if (r.message) lines.push(`    <system-out>${esc(r.message)}</system-out>`);
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}

function rolloutCase(r: RolloutReport, name: string): Case {
  const message = r.error?.message ?? r.message ?? r.outcome;
  switch (r.outcome) {
    case 'succeeded':
    case 'unchanged':
    case 'started':
      return { name };
    default:
      return { name, failure: { type: r.outcome, message: r.interrupted ? `${message}; ${r.interrupted.action}` : message } };
  }
}

function instanceCase(i: InstanceReport, r: RolloutReport): Case {
  const seconds = i.startedAt ? Math.max(0, (Date.parse(i.since) - Date.parse(i.startedAt)) / 1000) : undefined;
  const base = { name: i.unit, ...(seconds !== undefined ? { seconds } : {}) };
  if (i.phase === 'failed') return { ...base, failure: { type: 'instance-failed', message: i.error ?? 'failed' } };
  if (i.onTarget || (r.outcome === 'succeeded' && i.phase === 'done')) return base;
  if (i.error) return { ...base, failure: { type: 'instance-failed', message: `${i.error}${i.note ? ` (${i.note})` : ''}` } };
  const why =
    r.outcome === 'reverted' && i.phase === 'done'
      ? `reverted to revision ${r.rollout?.revertedTo ?? '?'}`
      : i.phase === 'pending'
        ? `not rolled (${r.outcome})`
        : `${i.phase} when ${r.outcome === 'interrupted' || r.outcome === 'timeout' ? 'following stopped' : `the rollout ended ${r.outcome}`}`;
  return { ...base, skipped: `${why}${i.note ? ` (${i.note})` : ''}` };
}

/** XML 1.0 attribute/text escaping; characters XML 1.0 cannot carry become U+FFFD. */
function esc(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}
