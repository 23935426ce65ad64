import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FleetxError } from '../../src/errors/errors.js';
import { BUILTIN_UNITS_DIR, findTemplate } from '../../src/template/find.js';
import { loadValues, parseSetPath } from '../../src/template/values.js';
import { errorOf } from '../helpers/errors.js';

const FIXTURES = new URL('../fixtures/units/', import.meta.url).pathname;

describe('loadValues', () => {
  it('merges YAML files in order (maps deeply), then --set', () => {
    const v = loadValues({ files: ['values-app.yaml', 'values-override.yaml'], sets: ['env.EXTRA=1', 'ports[1]=9090:90', 'tag=2.0'], cwd: FIXTURES });
    expect(v).toEqual({
      image: 'registry.example.com/app',
      tag: '2.0',
      ports: ['8080:80', '9090:90'],
      env: { LOG_LEVEL: 'debug', GREETING: 'hello world', EXTRA: '1' },
    });
  });

  it.each([
    ['simple', ['a=b'], { a: 'b' }],
    ['value keeps "=" and spaces', ['a=b=c d'], { a: 'b=c d' }],
    ['empty value', ['a='], { a: '' }],
    ['value stays a string', ['port=8080', 'on=true'], { port: '8080', on: 'true' }],
    ['nested map', ['env.FOO=bar', 'env.BAZ=qux'], { env: { FOO: 'bar', BAZ: 'qux' } }],
    ['new list', ['ports[0]=80:80', 'ports[1]=81:81'], { ports: ['80:80', '81:81'] }],
    ['list of maps', ['users[0].name=a'], { users: [{ name: 'a' }] }],
    ['later wins', ['a=1', 'a=2'], { a: '2' }],
  ])('--set %s', (_name, sets, expected) => {
    expect(loadValues({ files: [], sets, cwd: FIXTURES })).toEqual(expected);
  });

  it.each([
    ['no "="', 'image'],
    ['empty key', '=x'],
    ['double dot', 'a..b=x'],
    ['leading dot', '.a=x'],
    ['non-numeric index', 'a[x]=1'],
    ['prototype pollution', '__proto__.polluted=1'],
    ['constructor', 'constructor.prototype.x=1'],
  ])('--set with %s is a usage error', (_name, set) => {
    const e = errorOf(() => loadValues({ files: [], sets: [set], cwd: FIXTURES }));
    expect(e.kind).toBe('usage');
    expect(e.message).toContain('--set');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each([
    ['index past the end', ['ports[2]=x'], /past the end/],
    ['through a string', ['a=1', 'a.b=2'], /a is not a mapping/],
    ['index into a map', ['env.A=1', 'env[0]=2'], /env is not a list/],
  ])('--set %s is a usage error', (_name, sets, why) => {
    const e = errorOf(() => loadValues({ files: [], sets, cwd: FIXTURES }));
    expect(e.kind).toBe('usage');
    expect(e.message).toMatch(why);
  });

  it('YAML numbers stay as written; booleans stay booleans', () => {
    const d = mkdtempSync(join(tmpdir(), 'fleetx-values-'));
    try {
      writeFileSync(join(d, 'v.yaml'), 'tag: 1.10\nport: 8080\ndogstatsd: true\n');
      expect(loadValues({ files: ['v.yaml'], sets: [], cwd: d })).toEqual({ tag: '1.10', port: '8080', dogstatsd: true });
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('bad YAML is invalid, with file and line', () => {
    const e = errorOf(() => loadValues({ files: ['values-bad.yaml'], sets: [], cwd: FIXTURES }));
    expect(e.kind).toBe('invalid');
    expect(e.message).toMatch(/^values-bad\.yaml:\d+:\d+: invalid YAML/);
  });

  it('a top level that is not a mapping is invalid', () => {
    const e = errorOf(() => loadValues({ files: ['values-list.yaml'], sets: [], cwd: FIXTURES }));
    expect(e.kind).toBe('invalid');
    expect(e.message).toMatch(/top level must be a mapping.*list/);
  });

  it('a missing file is a usage error', () => {
    const e = errorOf(() => loadValues({ files: ['nope.yaml'], sets: [], cwd: FIXTURES }));
    expect(e.kind).toBe('usage');
    expect(e.message).toMatch(/nope\.yaml.*ENOENT/);
  });

  it('parseSetPath', () => {
    expect(parseSetPath('a.b[0].c')).toEqual(['a', 'b', 0, 'c']);
    expect(parseSetPath('a-b_c')).toEqual(['a-b_c']);
    expect(parseSetPath('[0]')).toBeUndefined();
  });
});

describe('findTemplate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetx-find-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'units'));
  writeFileSync(join(dir, 'units', 'app@.service.hbs'), '[Unit]\nDescription=local\n');
  writeFileSync(join(dir, 'units', 'web.service.hbs'), '[Unit]\nDescription=web\n');

  it.each([
    ['app', 'app@.service'],
    ['app@', 'app@.service'],
    ['app@.service', 'app@.service'],
    ['td-agent', 'td-agent.service'],
    ['dd-agent.service', 'dd-agent.service'],
    ['fleetx-agent', 'fleetx-agent.service'],
  ])('built-in %s -> %s', (name, unitName) => {
    const found = findTemplate(name, '/');
    expect(found).toEqual({ path: join(BUILTIN_UNITS_DIR, `${unitName}.hbs`), unitName });
  });

  it('./units of the working directory comes first', () => {
    expect(findTemplate('app', dir).path).toBe(join(dir, 'units', 'app@.service.hbs'));
    expect(findTemplate('web', dir).unitName).toBe('web.service');
  });

  it('a path to a .hbs file', () => {
    expect(findTemplate('units/web.service.hbs', dir)).toEqual({ path: join(dir, 'units', 'web.service.hbs'), unitName: 'web.service' });
  });

  it('unknown names are not-found, listing what exists', () => {
    const e = errorOf(() => findTemplate('nope', dir));
    expect(e.kind).toBe('not-found');
    expect(e.hint).toContain('app@.service');
    expect(errorOf(() => findTemplate('./missing.hbs', dir)).kind).toBe('not-found');
  });
});
