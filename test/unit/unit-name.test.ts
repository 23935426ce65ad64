import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FleetxError } from '../../src/errors/errors.js';
import { instanceOf, isInstanceOf, isValidUnitName, parseUnitName, templateOf } from '../../src/unit/name.js';
import { UNIT_TYPES, type UnitName } from '../../src/unit/types.js';
import { invalid } from '../helpers/errors.js';

describe('parseUnitName', () => {
  it.each<[string, string, UnitName]>([
    ['plain service', 'app.service', { full: 'app.service', prefix: 'app', type: 'service', isTemplate: false, isInstance: false }],
    ['template', 'app@.service', { full: 'app@.service', prefix: 'app', instance: '', type: 'service', isTemplate: true, isInstance: false }],
    ['instance', 'app@1.service', { full: 'app@1.service', prefix: 'app', instance: '1', type: 'service', isTemplate: false, isInstance: true, template: 'app@.service' }],
    ['instance containing dots', 'app@1.2.3.service', { full: 'app@1.2.3.service', prefix: 'app', instance: '1.2.3', type: 'service', isTemplate: false, isInstance: true, template: 'app@.service' }],
    ['prefix containing dots', 'org.example.web.socket', { full: 'org.example.web.socket', prefix: 'org.example.web', type: 'socket', isTemplate: false, isInstance: false }],
    ['all allowed characters', 'a-Z_0:9.x@i-_:.timer', { full: 'a-Z_0:9.x@i-_:.timer', prefix: 'a-Z_0:9.x', instance: 'i-_:', type: 'timer', isTemplate: false, isInstance: true, template: 'a-Z_0:9.x@.timer' }],
    ['escaped path style mount', 'var-lib-data.mount', { full: 'var-lib-data.mount', prefix: 'var-lib-data', type: 'mount', isTemplate: false, isInstance: false }],
  ])('%s: %s', (_d, name, expected) => {
    expect(parseUnitName(name)).toEqual(expected);
    expect(isValidUnitName(name)).toBe(true);
  });

  it.each(UNIT_TYPES.map((t) => [t]))('accepts type .%s', (t) => {
    expect(parseUnitName(`x.${t}`).type).toBe(t);
  });

  it('accepts 255 characters and rejects 256 (systemd and the file system refuse longer names)', () => {
    const ok = 'a'.repeat(255 - '.service'.length) + '.service';
    expect(parseUnitName(ok).full).toBe(ok);
    expect(invalid(() => parseUnitName('a' + ok)).message).toMatch(/256 characters long \(at most 255\)/);
  });

  it.each<[string, string, RegExp]>([
    ['empty', '', /it is empty/],
    ['no type suffix', 'app', /no type suffix/],
    ['unknown type', 'app.conf', /unknown unit type "\.conf"/],
    ['type in wrong case', 'app.Service', /unknown unit type "\.Service"/],
    ['name ending in a dot', 'app.', /unknown unit type "\."/],
    ['only a type', '.service', /name before the type is empty/],
    ['a space', 'my app.service', /character " " is not allowed \(only letters, digits and ":_\.@-"\)/],
    ['a slash', 'a/b.service', /character "\/" is not allowed/],
    ['a glob star', 'app@*.service', /character "\*" is not allowed/],
    ['non-ASCII letter', 'appé.service', /character "é" is not allowed/],
    ['two @', 'a@b@c.service', /more than one "@"/],
    ['empty prefix of a template', '@.service', /prefix before "@" is empty/],
    ['empty prefix of an instance', '@1.service', /prefix before "@" is empty/],
  ])('rejects %s (%s)', (_d, name, message) => {
    const e = invalid(() => parseUnitName(name));
    expect(e.message).toMatch(message);
    expect(e.hint).toMatch(/prefix\[@instance\]\.type/);
    expect(isValidUnitName(name)).toBe(false);
  });

  it('instance names round-trip through their template', () => {
    const part = fc.stringMatching(/^[a-zA-Z0-9:_.-]{1,20}$/);
    fc.assert(
      fc.property(part.filter((p) => !p.startsWith('.')), part, fc.constantFrom(...UNIT_TYPES), (prefix, inst, type) => {
        const name = `${prefix}@${inst}.${type}`;
        const n = parseUnitName(name);
        expect(n.prefix).toBe(prefix);
        expect(n.instance).toBe(inst);
        expect(n.template).toBe(`${prefix}@.${type}`);
        expect(instanceOf(n.template!, inst)).toBe(name);
      }),
    );
  });
});

describe('instanceOf', () => {
  it.each<[string, string, string]>([
    ['app@.service', '1', 'app@1.service'],
    ['web@.socket', 'eu-1.a', 'web@eu-1.a.socket'],
  ])('instanceOf(%s, %s) = %s', (template, inst, expected) => {
    expect(instanceOf(template, inst)).toBe(expected);
  });

  it.each<[string, string, string, RegExp]>([
    ['a non-template', 'app.service', '1', /not a template/],
    ['an instance as template', 'app@1.service', '2', /not a template/],
    ['an empty instance', 'app@.service', '', /empty instance/],
    ['an instance with @', 'app@.service', 'a@b', /must not contain "@"/],
    ['an instance with a bad character', 'app@.service', 'a b', /not allowed/],
    ['an invalid template name', 'app@.conf', '1', /unknown unit type/],
  ])('rejects %s', (_d, template, inst, message) => {
    expect(invalid(() => instanceOf(template, inst)).message).toMatch(message);
  });
});

// The one rule for "is this unit an instance of that template", used by the
// health monitor (which check), presence (which units), and deploy (which
// unit records a service has).
describe('templateOf and isInstanceOf', () => {
  it.each([
    ['app@3.service', 'app@.service'],
    ['app@blue.service', 'app@.service'],
    ['my-app@a.b.service', 'my-app@.service'],
    ['app@.service', undefined],
    ['plain.service', undefined],
    ['@x.service', undefined],
    ['app@1@2.service', undefined],
    ['app@1.nope', undefined],
  ])('templateOf(%s) = %s', (u, t) => expect(templateOf(u)).toBe(t));

  it.each([
    ['app@.service', 'app@1.service', true],
    ['app@.service', 'app@.service', false],
    ['app@.service', 'app@1.socket', false],
    ['app@.service', 'apps@1.service', false],
    ['app@.service', 'ap@1.service', false],
    ['app@.service', 'app@1@2.service', false],
    ['app@.service', 'app@a/b.service', false],
    ['app.service', 'app.service', true],
    ['app.service', 'app@1.service', false],
  ])('isInstanceOf(%s, %s) = %s', (t, u, want) => expect(isInstanceOf(t, u)).toBe(want));

  it('property: instanceOf(t, i) is an instance of t and of no other template', () => {
    const part = fc.stringMatching(/^[a-zA-Z0-9:_.-]{1,12}$/);
    fc.assert(
      fc.property(part, part, fc.constantFrom('service', 'socket', 'timer'), part, (prefix, instance, type, other) => {
        const t = `${prefix}@.${type}`;
        const unit = instanceOf(t, instance);
        expect(templateOf(unit)).toBe(t);
        expect(isInstanceOf(t, unit)).toBe(true);
        if (other !== prefix) expect(isInstanceOf(`${other}@.${type}`, unit)).toBe(false);
      }),
    );
  });
});
