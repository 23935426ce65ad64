import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FleetxError } from '../../src/errors/errors.js';
import { parseUnit } from '../../src/unit/parse.js';
import { serializeUnit } from '../../src/unit/serialize.js';
import { unitHash } from '../../src/unit/hash.js';
import { optionValue, optionValues, sectionNames } from '../../src/unit/options.js';
import type { UnitFile, UnitOption } from '../../src/unit/types.js';
import { invalid } from '../helpers/errors.js';
import { MISSION_APP_UNIT as MISSION } from '../helpers/units.js';

const o = (section: string, name: string, value: string): UnitOption => ({ section, name, value });

describe('parseUnit', () => {
  it('parses the mission app unit, leaving %i in [Service] untouched', () => {
    const u = parseUnit(MISSION);
    expect(sectionNames(u)).toEqual(['Unit', 'Service', 'X-Fleet']);
    expect(optionValues(u, 'Service', 'ExecStartPre')).toEqual([
      '-/usr/bin/docker kill app-%i',
      '-/usr/bin/docker rm app-%i',
      '/usr/bin/docker pull busybox:latest',
    ]);
    expect(optionValue(u, 'Service', 'ExecStart')).toBe('/usr/bin/docker run --name app-%i busybox:latest');
    expect(optionValue(u, 'X-Fleet', 'Conflicts')).toBe('app@*.service');
    expect(u.options).toHaveLength(11);
  });

  it.each<[string, string, UnitOption[]]>([
    ['empty file', '', []],
    ['only comments and blanks', '# a\n; b\n\n   \n  # indented\n', []],
    ['a section with no options disappears', '[Install]\n', []],
    ['# and ; comment lines are dropped', '[A]\n# x=1\n; y=2\nK=v\n', [o('A', 'K', 'v')]],
    ['# inside a value is kept (not a comment)', '[A]\nExecStart=/bin/echo #x ;y\n', [o('A', 'ExecStart', '/bin/echo #x ;y')]],
    ['keys and values are trimmed', '[A]\n  Key  =   some value \t\n', [o('A', 'Key', 'some value')]],
    ['inner whitespace of a value is kept', '[A]\nK=a   b\tc\n', [o('A', 'K', 'a   b\tc')]],
    ['only the first = splits', '[A]\nEnvironment=A=1 B=2\n', [o('A', 'Environment', 'A=1 B=2')]],
    ['empty assignment is kept as an empty value', '[A]\nEnvironment=\n', [o('A', 'Environment', '')]],
    ['blank assignment is an empty value', '[A]\nEnvironment=   \n', [o('A', 'Environment', '')]],
    ['repeated keys keep their order', '[A]\nK=1\nK=2\nK=\nK=3\n', [o('A', 'K', '1'), o('A', 'K', '2'), o('A', 'K', ''), o('A', 'K', '3')]],
    ['repeated section headers merge at first appearance', '[A]\nK=1\n[B]\nL=2\n[A]\nK=3\n', [o('A', 'K', '1'), o('A', 'K', '3'), o('B', 'L', '2')]],
    ['CRLF line endings', '[A]\r\nK=v\r\nL=w\r\n', [o('A', 'K', 'v'), o('A', 'L', 'w')]],
    ['CRLF file without a final newline', '[A]\r\nK=v\r', [o('A', 'K', 'v')]],
    ['no final newline', '[A]\nK=v', [o('A', 'K', 'v')]],
    ['non-ASCII text is kept', '[Unit]\nDescription=Café ☕ 😀\n', [o('Unit', 'Description', 'Café ☕ 😀')]],
    ['a UTF-8 BOM is skipped', '\uFEFF[A]\nK=v\n', [o('A', 'K', 'v')]],
    ['backslash continuation joins with a space', '[A]\nK=a\\\nb\n', [o('A', 'K', 'a b')]],
    ['continuation keeps the next line\'s indentation (systemd appends it as is)', '[A]\nK=a \\\n  b\n', [o('A', 'K', 'a    b')]],
    ['comment lines inside a continuation are skipped', '[A]\nK=a\\\n# skipped\n; skipped\nb\n', [o('A', 'K', 'a b')]],
    ['a blank line ends a continuation', '[A]\nK=a\\\n\nL=b\n', [o('A', 'K', 'a'), o('A', 'L', 'b')]],
    ['file ending inside a continuation is accepted', '[A]\nK=a\\', [o('A', 'K', 'a')]],
    ['a doubled backslash is not a continuation', '[A]\nK=a\\\\\nL=b\n', [o('A', 'K', 'a\\\\'), o('A', 'L', 'b')]],
    ['three backslashes continue, keeping two', '[A]\nK=a\\\\\\\nb\n', [o('A', 'K', 'a\\\\ b')]],
    ['a backslash inside a value is kept', '[A]\nK=a\\nb\n', [o('A', 'K', 'a\\nb')]],
    ['section names may contain dashes and spaces inside', '[X-Fleet]\nGlobal=true\n[Foo Bar]\nK=v\n', [o('X-Fleet', 'Global', 'true'), o('Foo Bar', 'K', 'v')]],
    ['section header with surrounding blanks', '  [A]  \nK=v\n', [o('A', 'K', 'v')]],
  ])('%s', (_d, text, options) => {
    expect(parseUnit(text).options).toEqual(options);
  });

  it.each<[string, string, RegExp]>([
    ['option before any section', 'K=v\n', /u\.service:1: option K appears before any \[Section\]/],
    ['line without =', '[A]\nK=v\nnonsense\n', /u\.service:3: line has no "="/],
    ['unclosed section header', '[A\nK=v\n', /u\.service:1: malformed section header/],
    ['text after a section header', '[A] # c\n', /u\.service:1: malformed section header/],
    ['empty section name', '[]\n', /u\.service:1: invalid section name ""/],
    ['section name with brackets', '[A]]\n', /u\.service:1: invalid section name/],
    ['section name with blanks inside the brackets', '[ A ]\n', /u\.service:1: invalid section name/],
    ['empty key', '[A]\n=v\n', /u\.service:2: empty option name/],
    ['key with a space', '[A]\nExec Start=v\n', /u\.service:2: invalid option name "Exec Start"/],
    ['key with a quote', '[A]\n"K"=v\n', /u\.service:2: invalid option name/],
    ['NUL byte', '[A]\nK=a\0b\n', /u\.service:2: contains a NUL byte/],
    ['lone carriage return', '[A]\nK=a\rb\n', /u\.service:2: contains a carriage return/],
    ['lone UTF-16 surrogate', '[A]\nK=\uD800x\n', /u\.service:2: is not valid Unicode/],
    ['backslash followed by blanks (cannot round-trip)', '[A]\nK=a\\  \n', /u\.service:2: value of K ends in a backslash/],
    ['error in a continued line names its first line', '[A]\nK=a\\\nb\\\nc\nbad\n', /u\.service:5: line has no "="/],
    ['a continuation that makes an invalid key', '[A]\nExec\\\nStart=x\n', /u\.service:2: invalid option name "Exec Start"/],
  ])('rejects %s', (_d, text, message) => {
    expect(invalid(() => parseUnit(text, 'u.service')).message).toMatch(message);
  });

  it('names "unit file" when no source is given', () => {
    expect(invalid(() => parseUnit('K=v')).message).toMatch(/^unit file:1:/);
  });
});

describe('serializeUnit', () => {
  it('writes the mission unit grouped by section with blank lines between', () => {
    const text = serializeUnit(parseUnit(MISSION));
    expect(text).toBe(MISSION.replace('[Service]', '\n[Service]').replace('[X-Fleet]', '\n[X-Fleet]'));
    expect(parseUnit(text)).toEqual(parseUnit(MISSION));
  });

  it.each<[string, UnitOption[], string]>([
    ['empty unit is empty text', [], ''],
    ['one option', [o('A', 'K', 'v')], '[A]\nK=v\n'],
    ['empty value', [o('A', 'K', '')], '[A]\nK=\n'],
    ['interleaved sections are grouped at first appearance', [o('A', 'K', '1'), o('B', 'L', '2'), o('A', 'K', '3')], '[A]\nK=1\nK=3\n\n[B]\nL=2\n'],
    ['even trailing backslashes are fine', [o('A', 'K', 'a\\\\')], '[A]\nK=a\\\\\n'],
    ['comment-like and = characters inside values', [o('A', 'K', '#x=;y')], '[A]\nK=#x=;y\n'],
  ])('%s', (_d, options, text) => {
    expect(serializeUnit({ options })).toBe(text);
  });

  it.each<[string, UnitOption, RegExp]>([
    ['a newline in a value', o('A', 'K', 'a\nb'), /line break/],
    ['a carriage return in a value', o('A', 'K', 'a\rb'), /line break/],
    ['a trailing backslash', o('A', 'K', 'a\\'), /backslash/],
    ['three trailing backslashes', o('A', 'K', 'a\\\\\\'), /backslash/],
    ['leading whitespace', o('A', 'K', ' a'), /whitespace/],
    ['trailing whitespace', o('A', 'K', 'a\t'), /whitespace/],
    ['a NUL byte', o('A', 'K', 'a\0'), /NUL/],
    ['a lone surrogate', o('A', 'K', '\uDC00'), /not valid Unicode/],
    ['an invalid key', o('A', 'K K', 'v'), /option name/],
    ['an empty key', o('A', '', 'v'), /option name/],
    ['a key with =', o('A', 'K=', 'v'), /option name/],
    ['a section name with ]', o('A]', 'K', 'v'), /section name/],
    ['an empty section name', o('', 'K', 'v'), /section name/],
  ])('throws invalid for %s', (_d, option, message) => {
    expect(invalid(() => serializeUnit({ options: [option] })).message).toMatch(message);
  });
});

describe('unitHash', () => {
  const base = unitHash(parseUnit(MISSION));
  it.each<[string, string]>([
    ['CRLF', MISSION.replace(/\n/g, '\r\n')],
    ['comments and blank lines', '# generated\n\n' + MISSION.replace('[Service]', '; svc\n\n[Service]\n# x\n')],
    ['whitespace around keys and values', MISSION.replace('Restart=always', '  Restart =  always  ')],
    ['a split [Service] section', MISSION.replace('TimeoutStartSec=0', '[Service]\nTimeoutStartSec=0')],
    ['the normalized text itself', serializeUnit(parseUnit(MISSION))],
  ])('is unchanged by %s', (_d, text) => {
    expect(unitHash(parseUnit(text))).toBe(base);
  });

  it('is sha256 hex and changes when content changes', () => {
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(unitHash(parseUnit(MISSION.replace('Restart=always', 'Restart=no')))).not.toBe(base);
    expect(unitHash(parseUnit(MISSION.replace(/ExecStartPre=-\/usr\/bin\/docker rm app-%i\n/, '')))).not.toBe(base);
  });
});

describe('option readers', () => {
  const u = parseUnit('[S]\nEnvironment=A=1\nEnvironment=B=2\nEnvironment=\nEnvironment=C=3\nType=simple\nType=oneshot\n[T]\nType=x\nEmpty=\n');
  it.each<[string, () => unknown, unknown]>([
    ['optionValues applies the reset', () => optionValues(u, 'S', 'Environment'), ['C=3']],
    ['optionValues of a missing option is empty', () => optionValues(u, 'S', 'Nope'), []],
    ['optionValues is scoped to its section', () => optionValues(u, 'T', 'Type'), ['x']],
    ['optionValues ending in a reset is empty', () => optionValues(u, 'T', 'Empty'), []],
    ['optionValue: last assignment wins', () => optionValue(u, 'S', 'Type'), 'oneshot'],
    ['optionValue of an empty assignment is ""', () => optionValue(u, 'T', 'Empty'), ''],
    ['optionValue of a missing option is undefined', () => optionValue(u, 'T', 'Nope'), undefined],
    ['sectionNames in order of first appearance', () => sectionNames(u), ['S', 'T']],
  ])('%s', (_d, fn, expected) => {
    expect(fn()).toEqual(expected);
  });
});

// ---- properties ----

const SAFE_CHARS = Array.from('abcXYZ019 \t=#;%@*?[]"\'\\/.:-_$é😀');
const valueArb = fc
  .array(fc.constantFrom(...SAFE_CHARS), { maxLength: 20 })
  .map((cs) => cs.join('').replace(/^[ \t]+|[ \t]+$/g, ''))
  .map((v) => (/(^|[^\\])(\\\\)*\\$/.test(v) ? v + '\\' : v)); // make a trailing backslash run even
const keyArb = fc.constantFrom('ExecStart', 'Environment', 'Description', 'X-Conflicts', 'K_1', 'a.b-c', '9');
const sectionArb = fc.constantFrom('Unit', 'Service', 'X-Fleet', 'Install', 'A B', 'x.y');

/** UnitFiles shaped like parseUnit's output: options grouped by section. */
const unitArb: fc.Arbitrary<UnitFile> = fc
  .uniqueArray(sectionArb, { maxLength: 4 })
  .chain((sections) =>
    fc.tuple(...sections.map((s) => fc.array(fc.tuple(keyArb, valueArb).map(([k, v]) => o(s, k, v)), { minLength: 1, maxLength: 5 }))),
  )
  .map((groups) => ({ options: groups.flat() }));

describe('properties', () => {
  it('round-trips: parseUnit(serializeUnit(u)) equals u', () => {
    fc.assert(
      fc.property(unitArb, (u) => {
        expect(parseUnit(serializeUnit(u))).toEqual(u);
      }),
      { numRuns: 500 },
    );
  });

  it('serializeUnit either throws invalid or writes text that parses back to the same unit', () => {
    const anyValue = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.array(fc.constantFrom('a', ' ', '\t', '\\', '\n', '\r', '\0', '\uD800', '#'), { maxLength: 8 }).map((c) => c.join('')));
    fc.assert(
      fc.property(fc.array(fc.tuple(sectionArb, keyArb, anyValue), { maxLength: 4 }), (opts) => {
        const options = opts.map(([s, k, v]) => o(s, k, v));
        const grouped = { options: [...new Set(options.map((x) => x.section))].flatMap((s) => options.filter((x) => x.section === s)) };
        let text: string;
        try {
          text = serializeUnit(grouped);
        } catch (e) {
          expect((e as FleetxError).kind).toBe('invalid');
          return;
        }
        expect(parseUnit(text)).toEqual(grouped);
      }),
      { numRuns: 1000 },
    );
  });

  const lineArb = fc.oneof(
    fc.constantFrom('[Unit]', '[Service]', '[X-Fleet]', '  [A]  ', '', '   ', '# c', ' ; c', 'K=', 'K=v\\', 'K=v\\\\', '\\', 'Key = a b ', 'bad', '[bad'),
    fc.tuple(keyArb, fc.constantFrom('=', ' = ', '= '), fc.array(fc.constantFrom(...SAFE_CHARS), { maxLength: 12 }).map((c) => c.join(''))).map((p) => p.join('')),
  );
  const textArb = fc.tuple(fc.array(lineArb, { maxLength: 25 }), fc.constantFrom('\n', '\r\n')).map(([ls, eol]) => ls.join(eol));

  it('normalization is idempotent on any text that parses', () => {
    let parsed = 0;
    fc.assert(
      fc.property(textArb, (text) => {
        let u: UnitFile;
        try {
          u = parseUnit(text);
        } catch (e) {
          expect((e as FleetxError).kind).toBe('invalid');
          return;
        }
        parsed++;
        const once = serializeUnit(u);
        expect(parseUnit(once)).toEqual(u);
        expect(serializeUnit(parseUnit(once))).toBe(once);
      }),
      { numRuns: 1000 },
    );
    expect(parsed).toBeGreaterThan(50);
  });

  it('hash is stable under inserted comments, blank lines, indentation, blanks around = and CRLF', () => {
    const noise = fc.array(fc.constantFrom('', '   ', '# comment', '; other', '  # indented', '\t'), { maxLength: 2 });
    fc.assert(
      fc.property(unitArb, fc.array(fc.tuple(noise, fc.boolean(), fc.boolean()), { minLength: 60, maxLength: 60 }), fc.boolean(), (u, edits, crlf) => {
        const lines = serializeUnit(u).split('\n');
        const out: string[] = [];
        lines.forEach((line, i) => {
          const [extra, indent, spaceEq] = edits[i % edits.length]!;
          out.push(...extra);
          let l = line;
          if (spaceEq && !l.startsWith('[')) l = l.replace('=', ' = ');
          out.push((indent ? '  ' : '') + l);
        });
        const text = out.join(crlf ? '\r\n' : '\n');
        expect(unitHash(parseUnit(text))).toBe(unitHash(u));
      }),
      { numRuns: 300 },
    );
  });

  it('continuation lines join with a space (backslash replaced), skipping comment lines', () => {
    const seg = fc
      .array(fc.constantFrom(...'ab =#;%"x- \t'.split('')), { maxLength: 8 })
      .map((c) => c.join(''))
      .filter((s) => !/^[ \t]*[#;]/.test(s));
    fc.assert(
      fc.property(fc.array(seg, { minLength: 1, maxLength: 5 }), fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }), (segs, comments) => {
        const first = 'K=' + segs[0];
        const text = '[A]\n' + [first, ...segs.slice(1)].map((s, i) => (i > 0 && comments[i] ? '# note\n' : '') + s).join('\\\n') + '\n';
        const expected = ('K=' + segs.join(' ')).slice(2).replace(/^[ \t]+|[ \t]+$/g, '');
        expect(parseUnit(text).options).toEqual([o('A', 'K', expected)]);
      }),
      { numRuns: 500 },
    );
  });

  it('optionValues matches a reference model of reset semantics', () => {
    const assignment = fc.tuple(fc.constantFrom('A', 'B'), fc.constantFrom('X', 'Y'), fc.constantFrom('', 'a', 'b', 'c d'));
    fc.assert(
      fc.property(fc.array(assignment, { maxLength: 30 }), ([...as]) => {
        const text = as.map(([s, k, v]) => `[${s}]\n${k}=${v}`).join('\n');
        const u = parseUnit(text);
        for (const s of ['A', 'B']) {
          for (const k of ['X', 'Y']) {
            // Reference: the values after the last empty assignment.
            const mine = as.filter(([s2, k2]) => s2 === s && k2 === k).map(([, , v]) => v);
            const lastReset = mine.lastIndexOf('');
            expect(optionValues(u, s, k)).toEqual(mine.slice(lastReset + 1));
            expect(optionValue(u, s, k)).toBe(mine.length ? mine[mine.length - 1] : undefined);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
