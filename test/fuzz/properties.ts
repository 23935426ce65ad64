/**
 * Bad input at scale (issue 9): properties over the parsers and renderers
 * that read what users write. Each must either succeed or throw a typed
 * FleetxError ('invalid'), never crash, and never let a value inject a
 * directive. Shared by the short CI run (test/unit/fuzz.test.ts) and the
 * long run (`npm run fuzz`, scripts/fuzz.ts).
 */
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { FleetxError } from '../../src/errors/errors.js';
import { derive } from '../../src/provision/derive.js';
import { findRole } from '../../src/provision/find.js';
import { renderUserData } from '../../src/provision/render.js';
import { parseProvisionValues } from '../../src/provision/values.js';
import { loadValues } from '../../src/template/values.js';
import { parseServiceText } from '../../src/service/load.js';
import { renderTemplate } from '../../src/template/render.js';
import { parseUnit } from '../../src/unit/parse.js';
import { serializeUnit } from '../../src/unit/serialize.js';
import { parseXFleet } from '../../src/unit/xfleet.js';

/** Only typed bad-input errors are allowed out. */
function typedOrOk(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof FleetxError) || e.kind !== 'invalid') throw e;
  }
}

const UNIT_ALPHABET = ['[', ']', '=', '\\', '\n', '\r', ' ', '\t', '#', ';', '%', '$', '"', '*', '@', '.', 'a', 'X', '-', 'é', '\0', 'Service', 'X-Fleet', 'ExecStart', 'Conflicts', 'MachineOf', 'Global'];
const unitText = fc.array(fc.constantFrom(...UNIT_ALPHABET), { maxLength: 60 }).map((xs) => xs.join(''));

/** A template with a value in each context it can appear in. */
const TEMPLATE = '[Unit]\nDescription=web {{v}}\n[Service]\nEnvironment=V={{v}}\nExecStart=/bin/echo {{arg v}} end\n[X-Fleet]\nMachineMetadata=role={{v}}\n';
const EXPECTED = ['[Unit] Description', '[Service] Environment', '[Service] ExecStart', '[X-Fleet] MachineMetadata'];
const VALUE_ALPHABET = ['\n', '\r', '\\', '%', '$', '"', "'", ' ', '=', '[', ']', 'ExecStartPre=/bin/sh', '{{', '}}', 'a', '1', '\u2028', '\0'];
const value = fc.oneof(fc.string({ maxLength: 20 }), fc.array(fc.constantFrom(...VALUE_ALPHABET), { maxLength: 12 }).map((xs) => xs.join('')));

const YAML_ALPHABET = ['name: web\n', 'instances: ', '200', '0', '-1', 'rollout:\n  ', 'deadline: ', 'maxUnavailable: ', '99999h', '&a ', '*a', '[', ']', '{', '}', ':', '\n', '  ', 'health: { type: tcp, port: 80, interval: ', 'x', '"', '!!binary ', '? '];
const yamlText = fc.array(fc.constantFrom(...YAML_ALPHABET), { maxLength: 30 }).map((xs) => xs.join(''));

/**
 * The cloud-config renderer: the web role with the test cluster's values,
 * read once; each case puts one hostile string into one value.
 */
const CLOUD_DIR = fileURLToPath(new URL('../fixtures/cloud-config/', import.meta.url));
const ROLE = findRole('web', CLOUD_DIR);
const CLUSTER_VALUES = loadValues({ files: [...(ROLE.valuesFile ? [ROLE.valuesFile] : []), 'cluster.yaml'], sets: [], cwd: CLOUD_DIR });
const SLOTS = ['zone', 'metadata.tier', 'etcd.username', 'etcd.keyPrefix', 'fleetx.url', 'registerTimeout', 'secrets.etcdPassword'] as const;
const CLOUD_ALPHABET = ['\n', '\r', '\u2028', '\u0085', '\0', ' ', '\t', ':', '- ', '#', '&a', '*a', '!!', '|', '>', '{', '}', '[', ']', ',', "'", '"', '\\', '$', '`', ';', '%', '=', '...', '---', 'runcmd:', 'write_files:', 'path: /etc/shadow', 'reboot', '/', 'a', '0600'];
const cloudValue = fc.oneof(fc.string({ maxLength: 24 }), fc.array(fc.constantFrom(...CLOUD_ALPHABET), { minLength: 1, maxLength: 14 }).map((xs) => xs.join('')));

type WriteFile = { path: string; permissions?: string; owner?: string; defer?: boolean; content?: string };

function renderCloud(raw: Record<string, unknown>): Record<string, unknown> {
  const values = parseProvisionValues({ ...raw, role: 'web' }, ROLE.template.name);
  return renderUserData(ROLE.template, { ...values, ...derive(values, ROLE.agentTemplate), nodesourceKey: ROLE.nodesourceKey }).config;
}

/** What no value may change: keys, files (path, mode, owner), commands (program, argument count), the agent unit's directives. */
function cloudShape(config: Record<string, unknown>): string {
  const files = (config.write_files as WriteFile[]) ?? [];
  const agent = files.find((f) => f.path === '/etc/systemd/system/fleetx-agent.service')?.content ?? '';
  return JSON.stringify({
    keys: Object.keys(config),
    files: files.map((f) => [f.path, f.permissions ?? '', f.owner ?? '', Boolean(f.defer)]),
    runcmd: ((config.runcmd as unknown[][]) ?? []).map((c) => (Array.isArray(c) ? [c[0], c.length] : ['(shell)', String(c)])),
    bootcmd: config.bootcmd ?? null,
    agent: parseUnit(agent, 'fleetx-agent.service').options.map((o) => `[${o.section}] ${o.name}`),
  });
}

const CLOUD_BASE = cloudShape(renderCloud(CLUSTER_VALUES));

function withValue(slot: string, v: string): Record<string, unknown> {
  const raw = structuredClone(CLUSTER_VALUES) as Record<string, Record<string, unknown>>;
  const [a, b] = slot.split('.') as [string, string | undefined];
  if (b === undefined) (raw as Record<string, unknown>)[a] = v;
  else raw[a] = { ...(raw[a] ?? {}), [b]: v };
  return raw;
}

export const properties = {
  /** unit parser: typed error or a unit that serializes and parses back to itself; [X-Fleet] typed too */
  'unit parser': fc.property(unitText, (text) => {
    let unit;
    try {
      unit = parseUnit(text);
    } catch (e) {
      if (!(e instanceof FleetxError) || e.kind !== 'invalid') throw e;
      return;
    }
    const again = parseUnit(serializeUnit(unit));
    if (JSON.stringify(again) !== JSON.stringify(unit)) throw new Error(`does not round-trip: ${JSON.stringify(text)}`);
    typedOrOk(() => parseXFleet(unit, 'web@1.service'));
  }),
  /** template renderer: typed error, or exactly the template's directives (no injected one) */
  'template renderer': fc.property(value, (v) => {
    try {
      const { unit } = renderTemplate(TEMPLATE, { v }, { templateName: 'web@.service' });
      const got = unit.options.map((o) => `[${o.section}] ${o.name}`);
      if (got.join('\n') !== EXPECTED.join('\n')) throw new Error(`value ${JSON.stringify(v)} changed the directives: ${got.join(', ')}`);
    } catch (e) {
      if (!(e instanceof FleetxError) || e.kind !== 'invalid') throw e;
    }
  }),
  /** service files: typed error or a spec within its documented bounds */
  'service files': fc.property(yamlText, (text) => {
    typedOrOk(() => {
      const spec = parseServiceText(text, 'fuzz.yaml');
      if (spec.instances < 1 || spec.instances > 100) throw new Error(`instances out of bounds: ${spec.instances}`);
      if (spec.rollout.deadlineMs < 1000) throw new Error(`deadline out of bounds: ${spec.rollout.deadlineMs}`);
    });
  }),
  /** cloud-config renderer: typed error, or user-data with the same keys, files, commands and agent directives; a secret only in 0600 files */
  'cloud-config renderer': fc.property(fc.constantFrom(...SLOTS), cloudValue, (slot, v) => {
    let config: Record<string, unknown>;
    try {
      config = renderCloud(withValue(slot, v));
    } catch (e) {
      if (!(e instanceof FleetxError) || e.kind !== 'invalid') throw e;
      return;
    }
    const shape = cloudShape(config);
    if (shape !== CLOUD_BASE) throw new Error(`${slot}=${JSON.stringify(v)} changed the user-data: ${shape}`);
    if (slot.startsWith('secrets.') && v.length >= 8) {
      const exposed = ((config.write_files as WriteFile[]) ?? []).filter((f) => f.permissions !== '0600' && (f.content ?? '').includes(v));
      if (exposed.length > 0 || JSON.stringify([config.runcmd, config.bootcmd]).includes(JSON.stringify(v).slice(1, -1))) {
        throw new Error(`${slot} leaked outside a 0600 file: ${exposed.map((f) => f.path).join(', ') || 'a command'}`);
      }
    }
  }),
} as const;

/** Runs every property `numRuns` times from `seed`; returns the cases run. Throws on the first failure (fast-check's report). */
export function runAll(numRuns: number, seed: number, log: (line: string) => void = () => {}): number {
  let total = 0;
  for (const [name, prop] of Object.entries(properties)) {
    fc.assert(prop as fc.IProperty<unknown>, { numRuns, seed });
    total += numRuns;
    log(`${name}: ${numRuns} cases, seed ${seed}: ok`);
  }
  return total;
}
