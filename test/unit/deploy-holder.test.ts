/** Who deploys: the pipeline's identity read from the CI system's environment, without secrets. */
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { holderFrom, withoutCredentials } from '../../src/deploy/holder.js';

describe('holderFrom', () => {
  it.each([
    ['Jenkins', { BUILD_USER_ID: 'alice', BUILD_TAG: 'jenkins-web-42', BUILD_URL: 'https://ci/job/web/42/', GIT_COMMIT: 'abc123' }, { user: 'alice', build: 'jenkins-web-42', url: 'https://ci/job/web/42/', commit: 'abc123' }],
    ['FLEETX_* win', { FLEETX_USER: 'bob', BUILD_USER_ID: 'alice', FLEETX_BUILD: 'b-1', BUILD_TAG: 't', FLEETX_COMMIT: 'c1', GIT_COMMIT: 'c2' }, { user: 'bob', build: 'b-1', commit: 'c1' }],
    ['GitHub Actions', { GITHUB_ACTOR: 'carol', GITHUB_REPOSITORY: 'org/app', GITHUB_RUN_ID: '99', GITHUB_SHA: 'def' }, { user: 'carol', build: 'github-org/app-99', url: 'https://github.com/org/app/actions/runs/99', commit: 'def' }],
    ['GitLab CI', { GITLAB_USER_LOGIN: 'dan', CI_JOB_ID: '7', CI_JOB_URL: 'https://gl/job/7', CI_COMMIT_SHA: 'fed' }, { user: 'dan', build: '7', url: 'https://gl/job/7', commit: 'fed' }],
    ['credentials in the build URL are dropped', { FLEETX_USER: 'e', BUILD_URL: 'https://bot:tok@ci/job/1/' }, { user: 'e', url: 'https://ci/job/1/' }],
  ] as Array<[string, NodeJS.ProcessEnv, object]>)('%s', (_, env, expected) => {
    expect(holderFrom(env)).toEqual({ host: hostname(), ...expected });
  });

  it('without a CI system: the login name and this host only', () => {
    const h = holderFrom({});
    expect(Object.keys(h).sort()).toEqual(['host', 'user']);
  });

  it.each([
    ['https://u:p@h/x', 'https://h/x'],
    ['https://h/x', 'https://h/x'],
    ['not a url //u:p@h', 'not a url //h'],
  ])('withoutCredentials(%s) = %s', (url, expected) => {
    expect(withoutCredentials(url)).toBe(expected);
  });
});
