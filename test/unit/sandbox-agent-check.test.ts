import { describe, expect, it } from 'vitest';
import { parseLiveness, stayedUp, type UnitLiveness } from '../../src/sandbox/agent-check.js';

const up = (mainPid: number): UnitLiveness => ({ activeState: 'active', subState: 'running', mainPid, nRestarts: 0 });

describe('agent check', () => {
  it('parses systemctl show output', () => {
    expect(parseLiveness('ActiveState=activating\nSubState=auto-restart\nMainPID=0\nNRestarts=4\n')).toEqual({
      activeState: 'activating',
      subState: 'auto-restart',
      mainPid: 0,
      nRestarts: 4,
    });
    expect(parseLiveness('')).toEqual({ activeState: 'unknown', subState: 'unknown', mainPid: 0, nRestarts: 0 });
  });

  it.each([
    ['the same process running both times', up(40), up(40), true],
    ['restarted in between (another main pid)', up(40), up(52), false],
    ['waiting for its restart at the first look', { ...up(0), activeState: 'activating', subState: 'auto-restart' }, up(52), false],
    ['failed at the second look', up(40), { ...up(0), activeState: 'failed', subState: 'failed' }, false],
    ['still starting (no main pid yet)', up(0), up(0), false],
  ])('%s', (_, first, second, expected) => {
    expect(stayedUp(first, second)).toBe(expected);
  });
});
