/**
 * A service: a template, the values it is rendered with, how many
 * instances run, and how they are checked, load-balanced and rolled out.
 * Users write it as YAML (services/NAME.yaml, see docs/ROLLOUT.md);
 * fleetx stores the validated form in etcd as a ServiceRecord.
 */

export interface HealthCheck {
  /** 'none': an instance counts as healthy once systemd says it is active */
  type: 'http' | 'tcp' | 'command' | 'none';
  /** port on the instance's machine (http, tcp) */
  port?: number;
  /** http: path requested with GET; 2xx and 3xx are healthy */
  path?: string;
  /** command: argv run on the instance's machine, never through a shell; exit 0 is healthy */
  command?: string[];
  intervalMs: number;
  timeoutMs: number;
  /** consecutive successes before an instance is healthy */
  threshold: number;
  /** consecutive failures before a healthy instance is unhealthy */
  failureThreshold: number;
}

export interface PresenceConfig {
  driver: 'haproxy' | 'webhook' | 'command' | 'etcd' | 'none';
  /** port the load balancer sends traffic to on the instance's machine */
  port?: number;
  /** haproxy: runtime API socket (unix path, or ipv4@host:port) and backend name */
  socket?: string;
  backend?: string;
  /** webhook: URL called with a JSON body; token read from a file, sent as a bearer token */
  url?: string;
  tokenFile?: string;
  /** command: argv; the change is passed in FLEETX_PRESENCE_* environment variables */
  command?: string[];
  /** etcd: prefix under which `unit -> address:port` keys are kept for confd / vulcand */
  etcdPrefix?: string;
  /** longest wait for open sessions to end after an instance left the balancer */
  drainTimeoutMs: number;
}

export interface RolloutPolicy {
  /** instances that may be unavailable at once, counting ones already unhealthy */
  maxUnavailable: number;
  /** extra instances started first where constraints leave a spare machine */
  surge: number;
  /** time an instance must stay healthy before the next one is taken down */
  minHealthyMs: number;
  /** longest time from an instance's start to healthy before the rollout fails */
  deadlineMs: number;
  /** on failure, roll back to the last revision that was healthy everywhere */
  autoRevert: boolean;
}

export interface ServiceSpec {
  name: string;
  /** template unit name, e.g. app@.service */
  template: string;
  /** template file (name in units/ or a path); absent for units submitted as plain files */
  templateSource?: string;
  values: Record<string, unknown>;
  instances: number;
  health: HealthCheck;
  presence: PresenceConfig;
  rollout: RolloutPolicy;
}

export interface ServiceRecord extends ServiceSpec {
  /** revision the service is on (or rolling out to) */
  revision: number;
  updatedAt: string;
}

/** Who deployed: user and host, and the CI build when there is one. */
export interface PipelineIdentity {
  user: string;
  host: string;
  /** CI build tag (Jenkins BUILD_TAG), when there is one */
  build?: string;
  /** the build's page (Jenkins BUILD_URL), without any user:password part */
  url?: string;
  /** the commit being deployed (GIT_COMMIT) */
  commit?: string;
}

export interface RevisionRecord {
  service: string;
  revision: number;
  /** hash of the rendered unit body in {p}/body/ */
  hash: string;
  values: Record<string, unknown>;
  createdAt: string;
  createdBy: string;
  /** the pipeline that deployed it (user, host, build, url, commit), when made by a deploy */
  deployedBy?: PipelineIdentity;
  /** set once every instance ran this revision healthy; auto-revert goes to the newest such */
  healthy: boolean;
}
