#!/usr/bin/env node
/**
 * STAND-IN for fluentd (td-agent), for the fleetx sandbox only: the real
 * fluent/fluentd image cannot be downloaded here. It is NOT fluentd. It
 * does the one job the sandbox needs, the way the real image is run:
 *
 *  - reads /fluentd/etc/$FLUENTD_CONF (default fluent.conf), as the image does;
 *  - runs as user `fluent` (the image's USER), writing under /fluentd/log;
 *  - understands a small part of fluentd's config language:
 *      <source> @type systemd  path DIR  tag TAG  matches [{"FIELD":"value"}]  read_from_head true|false </source>
 *      <match PATTERN> @type file  path FILE </match>    (one JSON line per event, appended)
 *      <match PATTERN> @type stdout </match>
 *    anything else is refused with a message naming it;
 *  - its systemd input reads the journal with journalctl (the real plugin,
 *    fluent-plugin-systemd, uses libsystemd's sd_journal API on the same files).
 *
 * Each event written is {"time": ISO, "tag": TAG, "record": {journal fields}}.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const CONF = `/fluentd/etc/${process.env.FLUENTD_CONF || 'fluent.conf'}`;
const log = (msg) => process.stdout.write(`${new Date().toISOString()} [info]: fluentd STAND-IN (fleetx sandbox, not fluentd): ${msg}\n`);
const die = (msg) => {
  process.stderr.write(`${new Date().toISOString()} [error]: fluentd STAND-IN: ${msg}\n`);
  process.exit(1);
};

/** The directives of a fluent.conf: [{ kind, arg, params }]. */
export function parseConf(text) {
  const out = [];
  let cur;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') continue;
    const open = /^<(\w+)(?:\s+([^>]*))?>$/.exec(line);
    if (open) {
      if (cur) die(`${CONF}:${i + 1}: nested <${open[1]}> is not supported by the stand-in`);
      cur = { kind: open[1], arg: (open[2] ?? '').trim(), params: {} };
      continue;
    }
    const close = /^<\/(\w+)>$/.exec(line);
    if (close) {
      if (!cur || cur.kind !== close[1]) die(`${CONF}:${i + 1}: unexpected </${close[1]}>`);
      out.push(cur);
      cur = undefined;
      continue;
    }
    const kv = /^(@?\w+)\s+(.*)$/.exec(line);
    if (!kv || !cur) die(`${CONF}:${i + 1}: cannot read "${line}"`);
    cur.params[kv[1]] = kv[2].trim();
  }
  if (cur) die(`${CONF}: <${cur.kind}> is not closed`);
  return out;
}

/** fluentd's tag patterns: `*` one part, `**` any parts, `{a,b}` either. */
function tagMatcher(pattern) {
  const alt = pattern.split(/\s+/).map((p) => {
    const re = p
      .replace(/[.+^$()|[\]\\]/g, '\\$&')
      .replace(/\{([^}]*)\}/g, (_m, a) => `(?:${a.split(',').join('|')})`)
      .replace(/\*\*/g, '\u0000')
      .replace(/\*/g, '[^.]+')
      .replace(/\u0000/g, '.*');
    return new RegExp(`^${re}$`);
  });
  return (tag) => alt.some((r) => r.test(tag));
}

function outputs(directives) {
  return directives
    .filter((d) => d.kind === 'match')
    .map((d) => {
      const match = tagMatcher(d.arg || '**');
      if (d.params['@type'] === 'file') {
        if (!d.params.path) die(`<match ${d.arg}> @type file needs a path`);
        return { match, emit: (e) => appendFileSync(d.params.path, `${JSON.stringify(e)}\n`) };
      }
      if (d.params['@type'] === 'stdout') return { match, emit: (e) => process.stdout.write(`${JSON.stringify(e)}\n`) };
      return die(`<match ${d.arg}> @type ${d.params['@type']} is not supported by the stand-in (file, stdout)`);
    });
}

function systemdSource(d, route) {
  const dir = d.params.path || '/var/log/journal';
  const tag = d.params.tag || 'systemd';
  const args = ['--directory', dir, '--follow', '--output', 'json', '--no-pager'];
  args.push(...(d.params.read_from_head === 'true' ? ['--lines', 'all'] : ['--lines', '0']));
  let matches = [];
  if (d.params.matches) {
    try {
      matches = JSON.parse(d.params.matches);
    } catch {
      die(`<source> matches must be JSON like [{"_COMM":"conmon"}], got ${d.params.matches}`);
    }
  }
  // journalctl: FIELD=value terms of one group are ANDed, "+" between groups ORs them (as the plugin's matches do)
  matches.forEach((m, i) => {
    if (i > 0) args.push('+');
    for (const [k, v] of Object.entries(m)) args.push(`${k}=${v}`);
  });
  log(`systemd input: journal ${dir}, tag ${tag}, matches ${JSON.stringify(matches)}`);
  const child = spawn('/usr/bin/journalctl', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  child.on('exit', (code) => die(`journalctl ended (exit ${code}); the real input would retry, the stand-in lets its unit restart it`));
  createInterface({ input: child.stdout }).on('line', (line) => {
    let rec;
    try {
      rec = JSON.parse(line);
    } catch {
      return;
    }
    const us = Number(rec.__REALTIME_TIMESTAMP);
    route({ time: new Date(Number.isFinite(us) ? us / 1000 : Date.now()).toISOString(), tag, record: rec });
  });
}

const directives = parseConf(readFileSync(CONF, 'utf8'));
log(`reading ${CONF} as uid ${process.getuid()} (${process.env.USER ?? 'fluent'})`);
const outs = outputs(directives);
const route = (e) => {
  for (const o of outs) {
    if (o.match(e.tag)) {
      o.emit(e);
      return; // fluentd: the first matching <match> takes the event
    }
  }
};
const sources = directives.filter((d) => d.kind === 'source');
if (sources.length === 0) die(`${CONF} has no <source>`);
for (const s of sources) {
  if (s.params['@type'] === 'systemd') systemdSource(s, route);
  else die(`<source> @type ${s.params['@type']} is not supported by the stand-in (systemd)`);
}
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => (log(`${sig}: shutting down`), process.exit(0)));
