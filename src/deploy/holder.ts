/**
 * Who holds a service's deploy lock, and who paused, resumed or aborted a
 * rollout: read once from the environment at the edge (CLI), stored in the
 * rollout record and control record, shown by `rollout status` and in lock
 * errors. The one home for a holder's identity and its one-line form.
 */
import { hostname, userInfo } from 'node:os';
import type { RolloutHolder } from '../rollout/types.js';

/**
 * The pipeline's identity, first found wins: FLEETX_* (set them from any CI
 * system), then Jenkins (BUILD_USER_ID from the build-user-vars plugin,
 * BUILD_TAG, BUILD_URL, GIT_COMMIT), GitHub Actions and GitLab CI; the user
 * falls back to the login name. Only identifiers are read, never secrets.
 */
export function holderFrom(env: NodeJS.ProcessEnv): RolloutHolder {
  const first = (...names: string[]) => names.map((n) => env[n]?.trim()).find((v) => v !== undefined && v !== '');
  let user = first('FLEETX_USER', 'BUILD_USER_ID', 'GITHUB_ACTOR', 'GITLAB_USER_LOGIN');
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = 'unknown';
    }
  }
  const github = env.GITHUB_RUN_ID && env.GITHUB_REPOSITORY ? env.GITHUB_REPOSITORY : undefined;
  const build = first('FLEETX_BUILD', 'BUILD_TAG', 'CI_JOB_ID') ?? (github ? `github-${github}-${env.GITHUB_RUN_ID}` : undefined);
  const url = first('FLEETX_BUILD_URL', 'BUILD_URL', 'CI_JOB_URL') ?? (github ? `${env.GITHUB_SERVER_URL ?? 'https://github.com'}/${github}/actions/runs/${env.GITHUB_RUN_ID}` : undefined);
  const commit = first('FLEETX_COMMIT', 'GIT_COMMIT', 'GITHUB_SHA', 'CI_COMMIT_SHA');
  return {
    user,
    host: hostname(),
    ...(build ? { build } : {}),
    ...(url ? { url: withoutCredentials(url) } : {}),
    ...(commit ? { commit } : {}),
  };
}

/** https://user:token@ci/job/1/ -> https://ci/job/1/: a URL with credentials in it must not reach etcd or logs. */
export function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}

/** `user@host` with the build in parentheses when there is one. */
export function describeHolder(holder: RolloutHolder): string {
  return `${holder.user}@${holder.host}${holder.build ? ` (${holder.build})` : ''}`;
}
