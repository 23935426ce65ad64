import { describe, expect, it } from 'vitest';
import { FleetxError } from '../../src/errors/errors.js';
import { parseUnit } from '../../src/unit/parse.js';
import { parseUnitName } from '../../src/unit/name.js';
import { expandSpecifiers } from '../../src/unit/specifiers.js';
import { globProblem, parseXFleet, splitMultivalue } from '../../src/unit/xfleet.js';
import { globMatches } from '../../src/unit/constraints.js';
import type { XFleetOptions } from '../../src/unit/types.js';
import { invalid } from '../helpers/errors.js';
import { MISSION_APP_UNIT as MISSION } from '../helpers/units.js';

const none: XFleetOptions = { conflicts: [], machineOf: [], machineMetadata: {}, global: false, replaces: [] };
const xf = (body: string, name = 'web@1.service'): XFleetOptions => parseXFleet(parseUnit(`[Service]\nExecStart=/bin/true\n[X-Fleet]\n${body}\n`), name);

describe('expandSpecifiers', () => {
  const inst = parseUnitName('my-app@eu-west-1.service');
  // Not a valid fleet name (backslash), but systemd's escaping is what %I undoes.
  const escaped = { ...inst, full: 'my-app@a\\x2db.service', instance: 'a\\x2db' };
  const plain = parseUnitName('db.socket');
  const tmpl = parseUnitName('app@.service');
  it.each<[string, string, ReturnType<typeof parseUnitName>, string]>([
    ['%n is the full name', '%n', inst, 'my-app@eu-west-1.service'],
    ['%N drops the type', '%N', inst, 'my-app@eu-west-1'],
    ['%p is the prefix', '%p', inst, 'my-app'],
    ['%P unescapes the prefix', '%P', inst, 'my/app'],
    ['%i is the instance', '%i', inst, 'eu-west-1'],
    ['%I unescapes the instance (- is /)', '%I', inst, 'eu/west/1'],
    ['%I unescapes \\xNN', '%I', escaped, 'a-b'],
    ['%% is a literal %', '100%%', inst, '100%'],
    ['%%i is a literal %i', '%%i', inst, '%i'],
    ['several in one value', 'db@%i.service-%p-%N', inst, 'db@eu-west-1.service-my-app-my-app@eu-west-1'],
    ['%i is empty for a plain unit', 'x%iy', plain, 'xy'],
    ['%p of a plain unit is its name without type', '%p', plain, 'db'],
    ['%i is empty for a template', 'db@%i.service', tmpl, 'db@.service'],
    ['no % is returned as is', 'plain', inst, 'plain'],
  ])('%s', (_d, value, name, expected) => {
    expect(expandSpecifiers(value, name)).toBe(expected);
  });

  it.each<[string, string, RegExp]>([
    ['%m (systemd machine id, not supported here)', 'a-%m', /unknown specifier "%m"/],
    ['%H', '%H', /unknown specifier "%H"/],
    ['a lone % at the end', 'app%', /lone "%"/],
  ])('rejects %s', (_d, value, message) => {
    expect(invalid(() => expandSpecifiers(value, inst)).message).toMatch(message);
  });
});

describe('splitMultivalue', () => {
  it.each<[string, string[]]>([
    ['a b  c', ['a', 'b', 'c']],
    ['"region=us east" disk=ssd', ['region=us east', 'disk=ssd']],
    ['region="us east"', ['region=us east']],
    ['""', ['']],
    ['', []],
    ['\ta\tb', ['a', 'b']],
  ])('%j', (value, expected) => {
    expect(splitMultivalue(value)).toEqual(expected);
  });

  it('rejects an unterminated quote', () => {
    expect(invalid(() => splitMultivalue('"a b')).message).toMatch(/unterminated double quote/);
  });
});

describe('parseXFleet', () => {
  it('reads the mission unit: app@1 conflicts with every app instance', () => {
    expect(parseXFleet(parseUnit(MISSION), 'app@1.service')).toEqual({ ...none, conflicts: ['app@*.service'] });
  });

  it('gives defaults for a unit without [X-Fleet]', () => {
    expect(parseXFleet(parseUnit('[Service]\nExecStart=/bin/true\n'), 'a.service')).toEqual(none);
  });

  it.each<[string, string, Partial<XFleetOptions>]>([
    ['Conflicts, space-separated', 'Conflicts=a.service b*.service', { conflicts: ['a.service', 'b*.service'] }],
    ['Conflicts, repeated', 'Conflicts=a.service\nConflicts=b.service', { conflicts: ['a.service', 'b.service'] }],
    ['Conflicts, duplicates dropped', 'Conflicts=a.service a.service', { conflicts: ['a.service'] }],
    ['Conflicts= resets earlier values', 'Conflicts=a.service\nConflicts=\nConflicts=b.service', { conflicts: ['b.service'] }],
    ['X-Conflicts (deprecated) adds to Conflicts', 'X-Conflicts=old.service\nConflicts=new.service', { conflicts: ['old.service', 'new.service'] }],
    ['Conflicts with %p', 'Conflicts=%p@*.service', { conflicts: ['web@*.service'] }],
    ['MachineOf', 'MachineOf=db.service', { machineOf: ['db.service'] }],
    ['MachineOf with %i', 'MachineOf=db@%i.service', { machineOf: ['db@1.service'] }],
    ['MachineOf, several', 'MachineOf=a.service b.socket\nMachineOf=c.service', { machineOf: ['a.service', 'b.socket', 'c.service'] }],
    ['X-ConditionMachineOf', 'X-ConditionMachineOf=db.service', { machineOf: ['db.service'] }],
    ['MachineID', 'MachineID=0123456789abcdef0123456789abcdef', { machineId: '0123456789abcdef0123456789abcdef' }],
    ['MachineID repeated with the same value', 'MachineID=abc\nMachineID=abc', { machineId: 'abc' }],
    ['X-ConditionMachineID', 'X-ConditionMachineID=abc', { machineId: 'abc' }],
    ['MachineID= unsets it', 'MachineID=abc\nMachineID=', {}],
    ['MachineMetadata, one entry', 'MachineMetadata=region=us-east', { machineMetadata: { region: ['us-east'] } }],
    ['MachineMetadata, space-separated', 'MachineMetadata=region=us-east disk=ssd', { machineMetadata: { region: ['us-east'], disk: ['ssd'] } }],
    ['MachineMetadata, quoted entries', 'MachineMetadata="region=us-east" "disk=ssd"', { machineMetadata: { region: ['us-east'], disk: ['ssd'] } }],
    ['MachineMetadata, quoted value with a space', 'MachineMetadata="rack=row 1"', { machineMetadata: { rack: ['row 1'] } }],
    ['MachineMetadata, repeated key ORs values', 'MachineMetadata=region=us-east\nMachineMetadata=region=us-west', { machineMetadata: { region: ['us-east', 'us-west'] } }],
    ['MachineMetadata, value containing =', 'MachineMetadata=expr=a=b', { machineMetadata: { expr: ['a=b'] } }],
    ['MachineMetadata with %i', 'MachineMetadata=shard=%i', { machineMetadata: { shard: ['1'] } }],
    ['X-ConditionMachineMetadata', 'X-ConditionMachineMetadata=role=db', { machineMetadata: { role: ['db'] } }],
    ['MachineMetadata= resets', 'MachineMetadata=a=1\nMachineMetadata=\nMachineMetadata=b=2', { machineMetadata: { b: ['2'] } }],
    ['Global=true', 'Global=true', { global: true }],
    ['Global=yes', 'Global=yes', { global: true }],
    ['Global=1', 'Global=1', { global: true }],
    ['Global=on', 'Global=on', { global: true }],
    ['Global=TRUE (case-insensitive)', 'Global=TRUE', { global: true }],
    ['Global=false', 'Global=false', {}],
    ['Global=no', 'Global=no', {}],
    ['Global=0', 'Global=0', {}],
    ['Global=off', 'Global=off', {}],
    ['Global, last one wins', 'Global=true\nGlobal=false', {}],
    ['Global= resets to false', 'Global=true\nGlobal=', {}],
    ['Global with MachineMetadata', 'Global=true\nMachineMetadata=role=edge', { global: true, machineMetadata: { role: ['edge'] } }],
    ['Replaces', 'Replaces=old.service', { replaces: ['old.service'] }],
    ['Replaces with %i', 'Replaces=web-old@%i.service', { replaces: ['web-old@1.service'] }],
    ['%% in a value', 'MachineMetadata=load=100%%', { machineMetadata: { load: ['100%'] } }],
    ['MachineOf with Conflicts', 'MachineOf=db.service\nConflicts=web@*.service', { machineOf: ['db.service'], conflicts: ['web@*.service'] }],
    ['MachineOf with Replaces', 'MachineOf=db.service\nReplaces=old.service', { machineOf: ['db.service'], replaces: ['old.service'] }],
    ['MachineID with MachineMetadata', 'MachineID=abc\nMachineMetadata=a=b', { machineId: 'abc', machineMetadata: { a: ['b'] } }],
    ['a unit conflicting with its own name is allowed (it is ignored)', 'Conflicts=%n', { conflicts: ['web@1.service'] }],
  ])('%s', (_d, body, expected) => {
    expect(xf(body)).toEqual({ ...none, ...expected });
  });

  it('expands the template MachineOf of a template to a template name', () => {
    expect(xf('MachineOf=db@%i.service', 'web@.service').machineOf).toEqual(['db@.service']);
  });

  it('ignores options of other sections that look like X-Fleet options', () => {
    expect(parseXFleet(parseUnit('[Unit]\nConflicts=other.service\n'), 'a.service')).toEqual(none);
  });

  it.each<[string, string, RegExp]>([
    ['MachineID with Conflicts', 'MachineID=abc\nConflicts=x.service', /MachineID cannot be combined with Conflicts in \[X-Fleet\]/],
    ['MachineID with MachineOf', 'MachineID=abc\nMachineOf=x.service', /MachineID cannot be combined with MachineOf in \[X-Fleet\]/],
    ['MachineID with Global', 'MachineID=abc\nGlobal=true', /MachineID cannot be combined with Global in \[X-Fleet\]/],
    ['MachineID with Replaces', 'MachineID=abc\nReplaces=x.service', /MachineID cannot be combined with Replaces in \[X-Fleet\]/],
    ['deprecated X-ConditionMachineID with X-Conflicts', 'X-ConditionMachineID=abc\nX-Conflicts=x.service', /MachineID cannot be combined with Conflicts/],
    ['Global with MachineOf', 'Global=true\nMachineOf=x.service', /Global cannot be combined with MachineOf in \[X-Fleet\]/],
    ['Global with Replaces', 'Global=yes\nReplaces=x.service', /Global cannot be combined with Replaces in \[X-Fleet\]/],
    ['Global with Conflicts (fleet: only MachineMetadata may accompany Global)', 'Global=true\nConflicts=x.service', /Global cannot be combined with Conflicts in \[X-Fleet\]/],
    ['Conflicts with Replaces', 'Conflicts=x.service\nReplaces=y.service', /Conflicts cannot be combined with Replaces in \[X-Fleet\]/],
    ['unknown option, listing known ones', 'MachineRole=db', /unknown option MachineRole in \[X-Fleet\]/],
    ['option names are case-sensitive', 'conflicts=x.service', /unknown option conflicts/],
    ['MachineOf naming the unit itself', 'MachineOf=web@1.service', /MachineOf names the unit itself/],
    ['MachineOf naming itself through %n', 'MachineOf=%n', /MachineOf names the unit itself/],
    ['Replaces naming the unit itself', 'Replaces=%p@%i.service', /Replaces names the unit itself/],
    ['MachineOf that is not a unit name', 'MachineOf=db', /MachineOf=db is not a valid unit name/],
    ['MachineOf with a glob', 'MachineOf=db@*.service', /MachineOf=db@\*\.service is not a valid unit name/],
    ['Replaces that is not a unit name', 'Replaces=old/x.service', /Replaces=old\/x\.service is not a valid unit name/],
    ['MachineOf naming a template from a non-template unit', 'MachineOf=db@.service', /names a template, which never runs/],
    ['MachineMetadata without =', 'MachineMetadata=ssd', /malformed MachineMetadata entry "ssd"/],
    ['MachineMetadata with empty key', 'MachineMetadata==ssd', /malformed MachineMetadata entry "=ssd"/],
    ['MachineMetadata with empty value', 'MachineMetadata=disk=', /malformed MachineMetadata entry "disk="/],
    ['MachineMetadata with an unterminated quote', 'MachineMetadata="disk=ssd', /unterminated double quote/],
    ['MachineID set twice to different values', 'MachineID=abc\nMachineID=def', /MachineID is set twice with different values/],
    ['MachineID with two ids', 'MachineID=abc def', /MachineID takes one machine id/],
    ['Global not a boolean', 'Global=maybe', /Global must be a boolean/],
    ['unknown specifier, named', 'Conflicts=%m.service', /unknown specifier "%m"/],
    ['a Conflicts glob with an unclosed class', 'Conflicts=[[[*', /Conflicts=\[\[\[\*: "\[\[\[\*" is not a valid glob: the "\[" at position 1 is never closed/],
    ['an empty MachineOf=', 'MachineOf=', /MachineOf= is empty/],
    ['MachineOf= reset and left empty', 'MachineOf=db.service\nMachineOf=', /MachineOf= is empty/],
    ['an empty X-ConditionMachineOf=', 'X-ConditionMachineOf=', /X-ConditionMachineOf= is empty/],
  ])('rejects %s', (_d, body, message) => {
    const e = invalid(() => xf(body));
    expect(e.message).toMatch(message);
    expect(e.message).toMatch(/^web@1\.service: /);
  });

  it('reports every bad option of the section, not only the first', () => {
    const e = invalid(() => xf('Foo=1\nGlobal=maybe\nMachineMetadata=ssd\nConflicts=[x'));
    expect(e.message.split('\n')).toEqual([
      'web@1.service: 4 problems in [X-Fleet]:',
      '  web@1.service: unknown option Foo in [X-Fleet]',
      '  web@1.service: Global=maybe: Global must be a boolean',
      '  web@1.service: Conflicts=[x: "[x" is not a valid glob: the "[" at position 1 is never closed',
      '  web@1.service: malformed MachineMetadata entry "ssd"',
    ]);
    expect(e.hint).toMatch(/known options: .*; use true/);
  });

  it('MachineOf= followed by a value is a reset, not an empty option', () => {
    expect(xf('MachineOf=a.service\nMachineOf=\nMachineOf=b.service').machineOf).toEqual(['b.service']);
  });

  it.each<[string, string | undefined]>([
    ['web@*.service', undefined],
    ['[]a]', undefined],
    ['[^]a]x', undefined],
    ['[a-z]?', undefined],
    ['\\[x', undefined],
    ['[\\]]', undefined],
    ['[', 'the "[" at position 1 is never closed'],
    ['a[b', 'the "[" at position 2 is never closed'],
    ['[]', 'the "[" at position 1 is never closed'],
    ['[z-a]', 'the range "z-a" runs backwards'],
    ['x\\', 'it ends in a lone "\\"'],
  ])('glob %j: %s', (glob, problem) => {
    expect(globProblem(glob)).toBe(problem);
  });

  it('valid globs match what they name', () => {
    expect(globMatches('[]a]', ']')).toBe(true);
    expect(globMatches('web@[0-9].service', 'web@3.service')).toBe(true);
  });

  it('lists the known options in the hint for an unknown one', () => {
    expect(invalid(() => xf('Foo=1')).hint).toMatch(/Conflicts, MachineOf, MachineID, MachineMetadata, Global, Replaces, X-Conflicts/);
  });

  it('rejects a template whose MachineOf is not a valid name once %i is empty', () => {
    const e = invalid(() => xf('MachineOf=%i.service', 'web@.service'));
    expect(e.message).toMatch(/MachineOf=\.service is not a valid unit name \(after expanding specifiers for the template, where %i is empty\)/);
  });

  it('rejects a template whose MachineOf expands to itself', () => {
    expect(invalid(() => xf('MachineOf=web@%i.service', 'web@.service')).message).toMatch(/names the unit itself/);
  });

  it('rejects an invalid unit name', () => {
    expect(invalid(() => xf('', 'web service')).message).toMatch(/invalid unit name/);
  });
});
