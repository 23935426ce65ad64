import { describe, expect, it } from 'vitest';
import { renderTemplate } from '../../src/template/render.js';

const SOURCE = `{{!-- fleetx-defaults:
  flag: false
--}}
[Service]
ExecStart=/bin/echo{{#if flag}} on{{/if}}
`;

describe('boolean defaults fix the shape of --set values', () => {
  it.each([
    ['"false" from --set is false', 'false', '/bin/echo'],
    ['"true" from --set is true', 'true', '/bin/echo on'],
    ['a YAML boolean stays as it is', false, '/bin/echo'],
  ])('%s', (_what, flag, exec) => {
    const { text } = renderTemplate(SOURCE, { flag }, { templateName: 't.service' });
    expect(text).toContain(`ExecStart=${exec}\n`);
  });

  it('refuses anything else with the value named', () => {
    expect(() => renderTemplate(SOURCE, { flag: 'maybe' }, { templateName: 't.service' })).toThrow(/flag must be true or false/);
  });
});
