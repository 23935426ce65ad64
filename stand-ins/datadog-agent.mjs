#!/usr/bin/env node
/**
 * STAND-IN for the Datadog agent (dd-agent), for the fleetx sandbox only:
 * the real datadog/agent image cannot be downloaded here, and nothing may
 * leave the sandbox. It is NOT the Datadog agent and sends nothing anywhere.
 * It does the one job the sandbox needs, the way the real image is run:
 *
 *  - copies check configs from /conf.d (the documented mount) over
 *    /etc/datadog-agent/conf.d, as the image's entrypoint does;
 *  - runs the OpenMetrics check of conf.d/openmetrics.d/conf.yaml: every
 *    instance's `openmetrics_endpoint` is scraped every
 *    `min_collection_interval` seconds (default 15); `namespace` prefixes
 *    what it reports. The stand-in reads that file as JSON (which is YAML);
 *  - reads DD_HOSTNAME, DD_SITE and DD_API_KEY from its environment; of the
 *    key it says only whether it is set, never its value;
 *  - prints one line per scrape (the journal keeps it, and the log sidecar
 *    ships it) and writes the last scrape of each endpoint to
 *    /opt/datadog-agent/run/openmetrics.json (the host's run dir).
 */
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const CONF_D = '/etc/datadog-agent/conf.d';
const RUN = '/opt/datadog-agent/run';
const say = (msg) => process.stdout.write(`${new Date().toISOString()} | CORE | INFO | datadog-agent STAND-IN (fleetx sandbox, sends nothing): ${msg}\n`);
const die = (msg) => {
  process.stderr.write(`${new Date().toISOString()} | CORE | ERROR | datadog-agent STAND-IN: ${msg}\n`);
  process.exit(1);
};

if (existsSync('/conf.d')) cpSync('/conf.d', CONF_D, { recursive: true });
const file = `${CONF_D}/openmetrics.d/conf.yaml`;
let conf;
try {
  conf = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  die(`cannot read ${file} (the stand-in reads it as JSON): ${e.message}`);
}
const instances = Array.isArray(conf.instances) ? conf.instances : [];
if (instances.length === 0) die(`${file} has no instances`);
mkdirSync(RUN, { recursive: true });

const host = process.env.DD_HOSTNAME || 'unknown-host';
say(`hostname ${host}, site ${process.env.DD_SITE || 'datadoghq.com'}, api key ${process.env.DD_API_KEY ? 'set' : 'missing'}; ${instances.length} openmetrics instance(s)`);

/** The samples of a Prometheus/OpenMetrics text: [{ name, labels, value }]. */
function samples(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m) out.push({ name: m[1], labels: m[2] ?? '', value: Number(m[3]) });
  }
  return out;
}

const last = {};
async function scrape(inst) {
  const url = inst.openmetrics_endpoint;
  const ns = inst.namespace ? `${inst.namespace}.` : '';
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const got = samples(await res.text());
    const names = new Set(got.map((s) => s.name));
    const pick = got.filter((s) => !s.name.endsWith('_bucket')).slice(0, 400);
    last[url] = { at: new Date().toISOString(), host, url, ok: true, samples: got.length, metrics: names.size, values: pick.map((s) => ({ metric: `${ns}${s.name}${s.labels}`, value: s.value })) };
    const shown = got.filter((s) => /_units\{|_reconcile_passes_total|_engine_leader/.test(`${s.name}{`)).map((s) => `${ns}${s.name}${s.labels}=${s.value}`);
    say(`openmetrics check: scraped ${url}: ${got.length} samples of ${names.size} metrics${shown.length ? `; ${shown.join(' ')}` : ''}`);
  } catch (e) {
    last[url] = { at: new Date().toISOString(), host, url, ok: false, error: String(e.message ?? e) };
    say(`openmetrics check: ${url} failed: ${last[url].error}`);
  }
  const tmp = `${RUN}/openmetrics.json.tmp`;
  writeFileSync(tmp, `${JSON.stringify(last, null, 2)}\n`);
  renameSync(tmp, `${RUN}/openmetrics.json`);
}

for (const inst of instances) {
  if (typeof inst.openmetrics_endpoint !== 'string') die(`${file}: every instance needs openmetrics_endpoint`);
  const every = Math.max(1, Number(inst.min_collection_interval ?? 15)) * 1000;
  void scrape(inst);
  setInterval(() => void scrape(inst), every);
}
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => (say(`${sig}: stopping`), process.exit(0)));
