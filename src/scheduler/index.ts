export * from './types.js';
export { schedule } from './schedule.js';
export { explain } from './explain.js';
export { processingOrder, type UnitOrder } from './order.js';
