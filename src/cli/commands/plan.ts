/** `fleetx plan`: what `fleetx deploy` would change, changing nothing (see deploy.ts). */
export { planCommand } from './deploy.js';
