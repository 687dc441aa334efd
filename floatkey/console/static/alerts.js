// The alert line: everything an administrator must act on, one sentence each.

import { when } from './dom.js';

export function alerts({ health, licenses }) {
  const lines = [];
  const storage = health.storage || {};
  if (storage.writable === false) {
    lines.push(`Storage is not writable since ${when(storage.since)}: changes cannot be saved (see the server log).`);
  }
  if (health.clock?.rolled_back) {
    lines.push(`The clock was set back (latest time seen ${when(health.clock.latest_seen)}): license checks refuse until it is right.`);
  }
  const keys = health.hardware_key?.keys || [];
  for (const k of keys) {
    if (k.state !== 'valid') lines.push(`Hardware key ${k.serial || '?'} is ${k.state}: ${k.reason || 'no reason given'}.`);
  }
  const valid = keys.some((k) => k.state === 'valid');
  const bound = (licenses || []).filter((l) => l.is_hardware_key_auth);
  if (bound.length && !valid) {
    const names = bound.map((l) => `${l.product_details?.short_code || '?'} (${l.id})`).join(', ');
    const pcsc = health.hardware_key?.pcsc === 'unavailable' ? ' The PC/SC service is unavailable.' : '';
    lines.push(`Hardware key missing: ${names} need a valid key; plug it in.${pcsc}`);
  }
  return lines;
}
