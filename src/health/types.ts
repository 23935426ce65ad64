/** What an agent's health checks say about an instance on its machine. */
export type HealthStatus = 'healthy' | 'unhealthy' | 'unknown';

export interface HealthRecord {
  unit: string;
  machine: string;
  /** the unit body hash the instance ran when checked */
  hash: string;
  status: HealthStatus;
  /** when status last changed (ISO); minimum healthy time counts from here */
  since: string;
  checkedAt: string;
  /** consecutive results equal to the current status */
  consecutive: number;
  message?: string;
  /**
   * main PID of the instance when it was last checked (added by the agent's
   * health monitor): a restarted agent keeps the status and since of an
   * instance still running under the same PID and hash instead of starting
   * over at 'unknown' (which would take it out of the load balancer).
   */
  mainPid?: number;
}
