import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseAgentConfig } from '../../src/agent/config.js';
import { firstIPv4, mergeMetadata, parseMetadataFlag } from '../../src/agent/identity.js';
import { desiredFrom, hasInstallSection } from '../../src/agent/schedule.js';
import { FleetxError } from '../../src/errors/errors.js';

describe('parseMetadataFlag', () => {
  it.each<[string, Record<string, string>]>([
    ['region=eu', { region: 'eu' }],
    ['region=eu,disk=ssd', { region: 'eu', disk: 'ssd' }],
    [' region = eu , disk=ssd ,', { region: 'eu', disk: 'ssd' }],
    ['empty=', { empty: '' }],
    ['a=b=c', { a: 'b=c' }],
    ['', {}],
  ])('%j → %j', (flag, expected) => {
    expect(parseMetadataFlag(flag)).toEqual(expected);
  });

  it.each(['region', '=eu', 'bad key=1', 'a=1,b'])('rejects %j as a usage error', (flag) => {
    expect(() => parseMetadataFlag(flag)).toThrow(FleetxError);
    try {
      parseMetadataFlag(flag);
    } catch (e) {
      expect((e as FleetxError).kind).toBe('usage');
    }
  });
});

describe('parseAgentConfig', () => {
  it('reads ip and metadata (numbers and booleans become strings)', () => {
    expect(parseAgentConfig('ip: 10.0.0.5\nmetadata:\n  region: eu\n  rack: 7\n  ssd: true\n', 'agent.yaml')).toEqual({
      ip: '10.0.0.5',
      metadata: { region: 'eu', rack: '7', ssd: 'true' },
    });
  });
  it('accepts an empty file', () => {
    expect(parseAgentConfig('', 'agent.yaml')).toEqual({});
  });
  it.each([
    ['unknown key', 'ipaddr: 1.2.3.4\n', 'ipaddr'],
    ['nested metadata', 'metadata:\n  a:\n    b: c\n', 'metadata.a'],
    ['not YAML', 'metadata: [\n', 'not valid YAML'],
  ])('rejects %s naming the file', (_, text, fragment) => {
    expect(() => parseAgentConfig(text, '/etc/fleetx/agent.yaml')).toThrow(/\/etc\/fleetx\/agent\.yaml/);
    expect(() => parseAgentConfig(text, '/etc/fleetx/agent.yaml')).toThrow(new RegExp(fragment.replace(/[.[\]]/g, '\\$&')));
  });
});

describe('mergeMetadata', () => {
  it('later layers win and keys come out sorted', () => {
    expect(Object.entries(mergeMetadata({ b: '1', a: '1' }, undefined, { b: '2' }, { c: '3' }))).toEqual([['a', '1'], ['b', '2'], ['c', '3']]);
  });
  it('is a last-writer-wins union (property)', () => {
    const map = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), fc.string());
    fc.assert(fc.property(map, map, (x, y) => {
      const m = mergeMetadata(x, y);
      for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) expect(m[k]).toBe(k in y ? y[k] : x[k]);
      expect(Object.keys(m).length).toBe(new Set([...Object.keys(x), ...Object.keys(y)]).size);
    }));
  });
});

describe('firstIPv4', () => {
  const v4 = (address: string, internal = false) => ({ address, family: 'IPv4' as const, internal, netmask: '', mac: '', cidr: null });
  const v6 = (address: string) => ({ address, family: 'IPv6' as const, internal: false, netmask: '', mac: '', cidr: null, scopeid: 0 });
  it('skips loopback and IPv6, takes interfaces in name order', () => {
    expect(firstIPv4({ lo: [v4('127.0.0.1', true)], eth1: [v4('10.0.1.1')], eth0: [v6('fe80::1'), v4('10.0.0.1')] })).toBe('10.0.0.1');
  });
  it('is undefined without a usable address', () => {
    expect(firstIPv4({ lo: [v4('127.0.0.1', true)] })).toBeUndefined();
  });
});

describe('desired(): schedule records joined with bodies', () => {
  it.each<[string, string, boolean]>([
    ['WantedBy', '[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n', true],
    ['RequiredBy', '[Service]\nExecStart=/bin/true\n[Install]\nRequiredBy=x.target\n', true],
    ['Alias only', '[Service]\nExecStart=/bin/true\n[Install]\nAlias=y.service\n', true],
    ['empty [Install]', '[Service]\nExecStart=/bin/true\n[Install]\n', false],
    ['no [Install]', '[Service]\nExecStart=/bin/true\n', false],
    ['unparsable', 'garbage without section\n', false],
  ])('[Install] detection: %s', (_, text, expected) => {
    expect(hasInstallSection(text)).toBe(expected);
  });

  it('marks units whose body is not cached as unavailable', () => {
    const d = desiredFrom(
      [{ name: 'a.service', hash: 'h1', targetState: 'launched' }, { name: 'b.service', hash: 'h2', targetState: 'loaded' }],
      (h) => (h === 'h1' ? { hasInstall: true } : undefined),
    );
    expect(d.get('a.service')).toEqual({ name: 'a.service', hash: 'h1', targetState: 'launched', hasInstall: true, available: true });
    expect(d.get('b.service')).toEqual({ name: 'b.service', hash: 'h2', targetState: 'loaded', hasInstall: false, available: false });
  });
});
