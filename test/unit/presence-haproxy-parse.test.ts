import { describe, expect, it } from 'vitest';
import { hostPort, observe } from '../../src/presence/drivers/haproxy.js';
import { parseShowStat, parseSocket } from '../../src/presence/drivers/haproxy-api.js';

const STAT = [
  '# pxname,svname,qcur,qmax,scur,smax,status,weight,addr,',
  'fe,FRONTEND,,,0,0,OPEN,,,',
  'app,app-1,0,0,2,3,UP,1,127.0.0.1:8080,',
  'app,app-2,0,0,0,0,MAINT,1,0.0.0.0:1,',
  'app,BACKEND,0,0,2,3,UP,1,,',
  'web,web-1,0,0,0,0,UP,1,10.0.0.1:80,',
  '',
].join('\n');

describe('haproxy runtime API parsing', () => {
  it('show stat: servers of one backend, by column name', () => {
    const m = parseShowStat(STAT, 'app');
    expect([...m.keys()]).toEqual(['app-1', 'app-2']);
    expect(m.get('app-1')).toEqual({ backend: 'app', server: 'app-1', status: 'UP', scur: 2, addr: '127.0.0.1:8080' });
  });

  it('show stat: a backend HAProxy does not have is a usage error', () => {
    expect(() => parseShowStat(STAT, 'nope')).toThrow(expect.objectContaining({ kind: 'usage', message: expect.stringMatching(/no backend "nope"/) }));
  });

  it('show stat: an answer that is not CSV is unavailable', () => {
    expect(() => parseShowStat('Unknown command\n', 'app')).toThrow(expect.objectContaining({ kind: 'unavailable' }));
  });

  it.each([
    ['/run/haproxy/admin.sock', { path: '/run/haproxy/admin.sock' }],
    ['unix@/tmp/a.sock', { path: '/tmp/a.sock' }],
    ['ipv4@127.0.0.1:9999', { host: '127.0.0.1', port: 9999 }],
  ])('socket %s', (spec, want) => expect(parseSocket(spec)).toEqual(want));

  it.each(['relative.sock', 'ipv4@127.0.0.1', 'ipv4@127.0.0.1:0', 'tcp://x:1'])('bad socket %s is a usage error', (spec) => {
    expect(() => parseSocket(spec)).toThrow(expect.objectContaining({ kind: 'usage' }));
  });

  it.each([
    ['UP', 0, 'in'],
    ['UP 1/2', 1, 'in'],
    ['no check', 0, 'in'],
    ['DRAIN', 3, 'draining'],
    ['DRAIN', 0, 'out'],
    ['MAINT', 0, 'out'],
    ['MAINT', 1, 'draining'],
    ['DOWN', 0, 'out'],
    ['DOWN 1/2', 0, 'out'],
  ])('status %s with %i sessions is %s', (status, scur, state) => {
    expect(observe('app@1.service', { backend: 'app', server: 'app-1', status, scur, addr: '10.0.0.1:80' })).toMatchObject({ state, sessions: scur, address: '10.0.0.1' });
  });

  it('IPv6 addresses as show stat writes them', () => {
    expect(hostPort('fd00::1', 80)).toBe('[fd00::1]:80');
    expect(hostPort('10.0.0.1', 80)).toBe('10.0.0.1:80');
    expect(observe('app@1.service', { backend: 'app', server: 'app-1', status: 'UP', scur: 0, addr: '[::1]:8080' }).address).toBe('::1');
  });
});
