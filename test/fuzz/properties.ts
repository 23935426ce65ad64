/**
 * Bad input at scale (issue 9): properties over the parsers and renderers
 * that read what users write. Each must either succeed or throw a typed
 * FleetxError ('invalid'), never crash, and never let a value inject a
 * directive. Shared by the short CI run (test/unit/fuzz.test.ts) and the
 * long run (`npm run fuzz`, scripts/fuzz.ts).
 */
import fc from 'fast-check';
import { FleetxError } from '../../src/errors/errors.js';
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
