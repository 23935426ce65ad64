/** Service files: durations, defaults, and one clear error per problem with file:line and field. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatDuration, parseDuration } from '../../src/service/duration.js';
import { parseServiceText } from '../../src/service/load.js';
import { FleetxError } from '../../src/errors/errors.js';
import { checkOf } from '../../src/health/services.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500], ['2s', 2000], ['1m', 60_000], ['1h', 3_600_000], ['1m30s', 90_000], ['1.5s', 1500], ['0s', 0], ['250', 250], [750, 750], [0, 0],
  ] as const)('%s -> %d ms', (v, ms) => expect(parseDuration(v)).toBe(ms));

  it.each([['soon'], ['2 s'], ['-1s'], ['1d'], [''], ['s'], [-5], [Number.NaN], [null], [true], [['1s']]])('refuses %j', (v) => {
    expect(parseDuration(v)).toBeUndefined();
  });

  it('formatDuration output parses back to the same value', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 10 * 3_600_000 }), (ms) => {
      const back = parseDuration(formatDuration(ms));
      // formatting rounds sub-second parts of long durations to 0.1 s
      expect(Math.abs(back! - ms)).toBeLessThanOrEqual(50);
    }));
  });
});

describe('parseServiceText', () => {
  it('fills every default', () => {
    expect(parseServiceText('name: app\nvalues: { image: busybox }\n', 'services/app.yaml')).toEqual({
      name: 'app',
      template: 'app@.service',
      values: { image: 'busybox' },
      instances: 1,
      health: { type: 'none', threshold: 1, failureThreshold: 2, intervalMs: 2000, timeoutMs: 1000 },
      presence: { driver: 'none', drainTimeoutMs: 30_000 },
      rollout: { maxUnavailable: 1, surge: 0, minHealthyMs: 1000, deadlineMs: 120_000, autoRevert: true },
    });
  });

  it('reads the example of docs/ROLLOUT.md', () => {
    const text = [
      'name: app',
      'template: app@.service',
      'source: app',
      'values: { image: busybox, tag: "1.36", replicas: 1.10 }',
      'instances: 3',
      'health:   { type: http, port: 8080, path: /healthz, interval: 1s, timeout: 1s, threshold: 2, failureThreshold: 2 }',
      'presence: { driver: haproxy, port: 8080, socket: /run/haproxy/admin.sock, backend: app, drainTimeout: 10s }',
      'rollout:  { maxUnavailable: 1, surge: 0, minHealthy: 2s, deadline: 60s, autoRevert: true }',
    ].join('\n');
    const s = parseServiceText(text, 'services/app.yaml');
    expect(s).toMatchObject({
      templateSource: 'app',
      instances: 3,
      values: { image: 'busybox', tag: '1.36', replicas: '1.10' },
      health: { type: 'http', port: 8080, path: '/healthz', intervalMs: 1000, timeoutMs: 1000, threshold: 2, failureThreshold: 2 },
      presence: { driver: 'haproxy', port: 8080, socket: '/run/haproxy/admin.sock', backend: 'app', drainTimeoutMs: 10_000 },
      rollout: { maxUnavailable: 1, surge: 0, minHealthyMs: 2000, deadlineMs: 60_000, autoRevert: true },
    });
  });

  it.each([
    ['name: app\nrollout:\n  maxUnavailable: 0\n', 'services/app.yaml:3: rollout.maxUnavailable must be a positive integer'],
    ['name: app\nrollout:\n  maxUnavailable: 1.5\n', 'services/app.yaml:3: rollout.maxUnavailable must be a positive integer'],
    ['name: app\nrollout: { surge: -1 }\n', 'services/app.yaml:2: rollout.surge must be a non-negative integer'],
    ['name: app\nrollout:\n  deadline: soon\n', 'services/app.yaml:3: rollout.deadline must be a positive duration like 500ms, 2s or 1m'],
    // absurd settings found in failure drills (issue 9): each a clear error, never a rollout that cannot work
    ['name: app\nrollout:\n  deadline: 0\n', 'services/app.yaml:3: rollout.deadline must be a positive duration'],
    ['name: app\nrollout:\n  deadline: 500ms\n', 'services/app.yaml:3: rollout.deadline must be between 1s and 24h, not 500ms'],
    ['name: app\nrollout:\n  deadline: 99999h\n', 'services/app.yaml:3: rollout.deadline must be between 1s and 24h, not 99999h'],
    ['name: app\nrollout:\n  deadline: 2s\n  minHealthy: 5s\n', 'services/app.yaml:3: rollout.deadline must be longer than rollout.minHealthy (5s)'],
    ['name: app\ninstances: 3\nrollout:\n  maxUnavailable: 1000\n', 'services/app.yaml:4: rollout.maxUnavailable must be at most instances (3), not 1000'],
    ['name: app\ninstances: 200\n', 'services/app.yaml:2: instances must be at most 100 (one deploy is one etcd transaction'],
    ['name: app\ninstances: 100\nrollout: { surge: 1 }\n', 'services/app.yaml:3: rollout.surge with instances (100) must be at most 100'],
    ['name: app\nhealth: { type: tcp, port: 80, interval: 0 }\n', 'services/app.yaml:2: health.interval must be a positive duration'],
    ['name: app\nhealth: { type: tcp, port: 80, interval: 2h }\n', 'services/app.yaml:2: health.interval must be between 10ms and 1h, not 2h'],
    ['name: app\nrollout: { autoRevert: yes please }\n', 'services/app.yaml:2: rollout.autoRevert must be true or false'],
    ['name: app\ntemplate: app.service\n', 'services/app.yaml:2: template must be a template unit name like app@.service, not app.service'],
    ['name: app\ntemplate: "a b@.service"\n', 'services/app.yaml:2: template must be a template unit name like app@.service: invalid unit name'],
    ['name: app\ninstances: three\n', 'services/app.yaml:2: instances must be a positive integer'],
    ['name: app\nhealth: { type: http }\n', 'services/app.yaml:2: health.port is required for health type http'],
    ['name: app\nhealth: { type: command }\n', 'services/app.yaml:2: health.command is required for health type command'],
    ['name: app\nhealth: { type: grpc }\n', 'services/app.yaml:2: health.type must be one of http, tcp, command, none'],
    ['name: app\nhealth: { type: tcp, port: 70000 }\n', 'services/app.yaml:2: health.port must be a port number (1-65535)'],
    ['name: app\npresence: { driver: haproxy, port: 80 }\n', 'services/app.yaml:2: presence.socket is required for presence driver haproxy'],
    ['name: app\npresence: { driver: webhook, url: not a url }\n', 'services/app.yaml:2: presence.url must be a URL'],
    ['name: app\npresence: { driver: command, command: sh -c x }\n', 'services/app.yaml:2: presence.command must be a list of strings (argv, no shell)'],
    ['name: app\nvalues: [1, 2]\n', 'services/app.yaml:2: values must be a mapping of names to values'],
    ['name: app\nreplicas: 3\n', 'services/app.yaml:2: unknown field replicas'],
    ['name: app\nrollout:\n  maxUnavail: 2\n', 'services/app.yaml:3: unknown field maxUnavail (in rollout)'],
    ['template: app@.service\n', 'services/app.yaml:1: name must be a string'],
    ['name: ../etc\n', 'services/app.yaml:1: name must start with a letter or digit'],
    ['name: app\nname: again\n', 'services/app.yaml:2: invalid YAML'],
    ['name: [unclosed\n', 'services/app.yaml:2: invalid YAML'], // the line where the parser noticed
  ])('%j -> %s', (text, message) => {
    let err: unknown;
    try {
      parseServiceText(text, 'services/app.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FleetxError);
    expect((err as FleetxError).kind).toBe('invalid');
    expect((err as FleetxError).message).toContain(message);
  });

  it('lists every problem at once', () => {
    const text = 'name: app\ninstances: 0\nrollout:\n  maxUnavailable: 0\n  deadline: x\n';
    const msg = (() => {
      try {
        parseServiceText(text, 's.yaml');
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    })();
    expect(msg.split('\n')).toEqual([
      '3 problems in s.yaml:',
      '  s.yaml:2: instances must be a positive integer',
      '  s.yaml:4: rollout.maxUnavailable must be a positive integer',
      '  s.yaml:5: rollout.deadline must be a positive duration like 500ms, 2s or 1m, or a number of milliseconds',
    ]);
  });
});

describe('health checks: one validation for the file and the stored form', () => {
  const file = (health: Record<string, unknown>) => `name: app\nvalues: {}\nhealth: ${JSON.stringify(health)}\n`;

  it('refuses a zero interval or timeout (agents could never run the check)', () => {
    for (const health of [{ type: 'tcp', port: 80, interval: '0s' }, { type: 'tcp', port: 80, timeout: 0 }]) {
      expect(() => parseServiceText(file(health), 'services/app.yaml')).toThrow(/must be a positive duration/);
    }
  });

  it('property: every check a service file accepts is one an agent can use once stored', () => {
    const health = fc.record(
      {
        type: fc.constantFrom('http', 'tcp', 'command', 'none'),
        port: fc.integer({ min: 1, max: 65535 }),
        path: fc.constantFrom('/', '/health'),
        command: fc.constant(['/bin/true']),
        interval: fc.constantFrom('1ms', '2s', 500, '1m'),
        timeout: fc.constantFrom('1ms', '1s', 250),
        threshold: fc.integer({ min: 1, max: 5 }),
        failureThreshold: fc.integer({ min: 1, max: 5 }),
      },
      { requiredKeys: ['type'] },
    );
    fc.assert(
      fc.property(health, (h) => {
        let spec;
        try {
          spec = parseServiceText(file(h), 'services/app.yaml');
        } catch {
          return; // refused by the file schema: nothing is stored
        }
        expect(checkOf({ health: spec.health })).toEqual(spec.health);
      }),
    );
  });
});
