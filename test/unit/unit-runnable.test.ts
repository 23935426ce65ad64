import { describe, expect, it } from 'vitest';
import { FleetxError } from '../../src/errors/errors.js';
import { parseUnit, UNIT_SIZE_MAX } from '../../src/unit/parse.js';
import { checkRunnable, unrunnableProblems } from '../../src/unit/runnable.js';
import type { UnitType } from '../../src/unit/types.js';

describe('unrunnableProblems: what systemd refuses to load (bad-setting)', () => {
  it.each<[string, UnitType, string, RegExp | undefined]>([
    ['an empty file', 'service', '', /the unit file is empty/],
    ['only comments', 'service', '# nothing\n; here\n', /the unit file is empty/],
    ['an empty target', 'target', '', /the unit file is empty/],
    ['a service with ExecStart', 'service', '[Service]\nExecStart=/bin/true\n', undefined],
    ['a service without [Service]', 'service', '[Unit]\nDescription=x\n', /has no ExecStart=, which systemd allows only for Type=oneshot/],
    ['ExecStart reset and left empty', 'service', '[Service]\nExecStart=/bin/true\nExecStart=\n', /has no ExecStart=/],
    ['a oneshot with only ExecStop', 'service', '[Service]\nType=oneshot\nExecStop=/bin/true\n', undefined],
    ['a oneshot with SuccessAction', 'service', '[Unit]\nSuccessAction=none\n[Service]\nType=oneshot\n', undefined],
    ['a oneshot with nothing', 'service', '[Service]\nType=oneshot\n', /no ExecStart=, ExecStop= or SuccessAction=/],
    ['a socket that listens', 'socket', '[Socket]\nListenStream=8080\n', undefined],
    ['a socket with nothing to listen on', 'socket', '[Unit]\nDescription=x\n', /\[Socket\] has no Listen setting/],
    ['a timer with OnCalendar', 'timer', '[Timer]\nOnCalendar=daily\n', undefined],
    ['a timer with no trigger', 'timer', '[Timer]\nPersistent=true\n', /\[Timer\] has no trigger/],
    ['a target with a description', 'target', '[Unit]\nDescription=x\n', undefined],
  ])('%s', (_d, type, text, problem) => {
    const got = unrunnableProblems(parseUnit(text), type);
    if (problem === undefined) expect(got).toEqual([]);
    else expect(got.join('\n')).toMatch(problem);
  });

  it('checkRunnable throws invalid naming the unit', () => {
    let err: unknown;
    try {
      checkRunnable(parseUnit(''), 'web.service', 'service');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FleetxError);
    expect((err as FleetxError).kind).toBe('invalid');
    expect((err as FleetxError).message).toMatch(/^web\.service: the unit file is empty/);
  });
});

describe('UNIT_SIZE_MAX', () => {
  it('accepts a unit of exactly the limit and refuses one byte more, counting UTF-8 bytes', () => {
    const head = '[Service]\nExecStart=/bin/true\nEnvironment=P=';
    const fill = (n: number, c = 'x') => `${head}${c.repeat(n)}\n`;
    expect(() => parseUnit(fill(UNIT_SIZE_MAX - head.length - 1))).not.toThrow();
    expect(() => parseUnit(fill(UNIT_SIZE_MAX - head.length))).toThrow(/more than the 262144/);
    // 'é' is two bytes: half as many characters reach the limit
    expect(() => parseUnit(fill(Math.ceil((UNIT_SIZE_MAX - head.length) / 2), 'é'))).toThrow(/more than the 262144/);
  });
});
