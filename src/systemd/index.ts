export type { ConnectOptions, JobResult, Systemd, UnitStatus } from './types.js';
export { JOB_RESULTS } from './types.js';
export { connectSystemd } from './systemd.js';
export { MANAGED_MARKER } from './unit-files.js';
