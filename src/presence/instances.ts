/**
 * The names instances take in a load balancer. Pure string functions.
 * (Which units are instances of a service: unit/name.ts isInstanceOf.)
 */
import { isInstanceOf, parseUnitName } from '../unit/name.js';

/**
 * HAProxy server slot of an instance: `app@1.service` -> `app-1`
 * (prefix, "-", instance; a unit without "@" uses its prefix). HAProxy
 * server names accept letters, digits and "-_.:", which covers every
 * character a unit instance may hold.
 */
export function slotName(unit: string): string {
  const n = parseUnitName(unit);
  return n.isInstance ? `${n.prefix}-${n.instance}` : n.prefix;
}

/** The instance of `template` that sits in `slot`, or undefined when the slot is not named after one. */
export function unitOfSlot(template: string, slot: string): string | undefined {
  const n = parseUnitName(template);
  if (!n.isTemplate) return slot === n.prefix ? template : undefined;
  if (!slot.startsWith(`${n.prefix}-`) || slot.length === n.prefix.length + 1) return undefined;
  const unit = `${n.prefix}@${slot.slice(n.prefix.length + 1)}.${n.type}`;
  return isInstanceOf(template, unit) ? unit : undefined;
}
