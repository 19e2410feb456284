import { createHash } from 'node:crypto';
import { Errors } from './errors';

/** The implicit IoT target: the service's own AWS IoT configuration (docs/iot-targets.md). */
export const DEFAULT_TARGET_ID = 'default';
export const IOT_TARGET_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * Which IoT target(s) devices go to (docs/iot-targets.md, "Allocation"): set on a claim, an EST label, or a profile
 * (IOT_PROFILE_ALLOCATION). Shared vocabulary: claims, EST, certificates and config read it; iot registers by it.
 */
export type Allocation =
  | { mode: 'fixed'; targetId: string }
  | { mode: 'attribute'; attribute: string; map: Record<string, string>; default?: string }
  | { mode: 'weighted'; weights: Record<string, number> };

/** Every target an allocation can send a device to. */
export function allocationTargets(allocation: Allocation): string[] {
  switch (allocation.mode) {
    case 'fixed':
      return [allocation.targetId];
    case 'attribute':
      return [...new Set([...Object.values(allocation.map), ...(allocation.default ? [allocation.default] : [])])];
    case 'weighted':
      return Object.keys(allocation.weights);
  }
}

/** Checks an allocation's shape (its targets' existence is checked by the caller). */
export function checkAllocation(value: unknown): asserts value is Allocation {
  const a = value as Record<string, unknown>;
  const bad = (why: string) => Errors.validation(`allocation: ${why}`);
  if (!a || typeof a !== 'object') throw bad('must be an object');
  const isId = (v: unknown) => typeof v === 'string' && IOT_TARGET_ID_PATTERN.test(v);
  if (a.mode === 'fixed') {
    if (!isId(a.targetId)) throw bad('targetId must be a target id');
  } else if (a.mode === 'attribute') {
    if (typeof a.attribute !== 'string' || !/^[a-zA-Z0-9_.,@/:#=[\]-]{1,128}$/.test(a.attribute)) throw bad('attribute must be a thing attribute name');
    const map = a.map as Record<string, unknown>;
    if (!map || typeof map !== 'object' || Object.keys(map).length === 0 || Object.keys(map).length > 100) throw bad('map must map 1-100 attribute values to target ids');
    if (!Object.values(map).every(isId)) throw bad('map values must be target ids');
    if (a.default !== undefined && !isId(a.default)) throw bad('default must be a target id');
  } else if (a.mode === 'weighted') {
    const weights = a.weights as Record<string, unknown>;
    if (!weights || typeof weights !== 'object' || Object.keys(weights).length === 0 || Object.keys(weights).length > 20) throw bad('weights must give 1-20 targets a weight');
    for (const [id, w] of Object.entries(weights)) {
      if (!isId(id) || typeof w !== 'number' || !Number.isInteger(w) || w < 1 || w > 1000) throw bad('weights must be whole numbers 1-1000 by target id');
    }
  } else {
    throw bad("mode must be 'fixed', 'attribute' or 'weighted'");
  }
}

/**
 * The target a device goes to. `attributes` are the device's thing attributes (the exchange's, over the claim's).
 * Weighted allocation hashes the serial, so a retry (or re-provisioning) lands in the same target.
 */
export function allocate(allocation: Allocation | null, deviceSerial: string, attributes: Record<string, string>): string {
  if (!allocation) return DEFAULT_TARGET_ID;
  switch (allocation.mode) {
    case 'fixed':
      return allocation.targetId;
    case 'attribute': {
      // Own properties only: a value such as "constructor" must not read Object.prototype (docs/iot-targets.md).
      const value = Object.hasOwn(attributes, allocation.attribute) ? attributes[allocation.attribute] : undefined;
      const target = value !== undefined && Object.hasOwn(allocation.map, value) ? allocation.map[value] : undefined;
      if (target) return target;
      if (allocation.default) return allocation.default;
      throw Errors.validation(`the allocation sends devices by attribute "${allocation.attribute}", and ${value === undefined ? 'the device has none' : `"${value}" maps to no target`}`);
    }
    case 'weighted': {
      // Code-unit order, not localeCompare: every replica must pick the same target whatever its locale.
      const entries = Object.entries(allocation.weights).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const total = entries.reduce((sum, [, w]) => sum + w, 0);
      let point = createHash('sha256').update(deviceSerial).digest().readUInt32BE(0) % total;
      for (const [id, w] of entries) {
        if (point < w) return id;
        point -= w;
      }
      return entries[entries.length - 1][0];
    }
  }
}
