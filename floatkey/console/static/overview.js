// Overview: who this server is, the key, storage, and every license's use.

import { clear, el, when } from './dom.js';

export const path = 'overview';
export const title = 'Overview';

function usageBar(label, used, allowed, unlimited) {
  const text = unlimited ? `${used} used (unlimited)` : `${used} / ${allowed}`;
  return el(
    'div',
    { class: 'bar' },
    el('span', { class: 'bar-label' }, label),
    unlimited || !allowed ? null : el('meter', { min: '0', max: String(allowed), low: String(allowed * 0.7), high: String(allowed * 0.9), optimum: '0', value: String(Math.min(used, allowed)), 'aria-label': `${label} ${text}` }),
    el('span', { class: 'bar-value' }, text),
  );
}

function keyLine(hw) {
  const keys = hw?.keys || [];
  if (!keys.length) return hw?.pcsc === 'running' ? 'no key present' : 'PC/SC unavailable, no key';
  return keys.map((k) => `${k.serial || '?'} ${k.state}${k.reason ? ` (${k.reason})` : ''}`).join(', ');
}

export function render(main) {
  const identity = el('dl', { class: 'facts', id: 'identity' });
  const list = el('div', { class: 'licenses', id: 'license-usage' });
  main.append(el('section', { class: 'card' }, el('h2', {}, 'Server'), identity), el('section', {}, el('h2', {}, 'Licenses'), list));
  let last = '';
  return {
    async update({ health, licenses }) {
      const seen = JSON.stringify([health, licenses]);
      if (seen === last) return;
      last = seen;
      const storage = health.storage || {};
      const facts = [
        ['Version', health.version],
        ['Hardware ID', health.hardware_id],
        ['License source', health.license_source],
        ['Hardware key', keyLine(health.hardware_key)],
        ['Storage', `${storage.writable === false ? 'NOT writable' : 'writable'}, ${Math.round((storage.map_used || 0) * 100)} % of the map used`],
        ['Clock', health.clock?.rolled_back ? 'rolled back' : 'ok'],
      ];
      clear(identity).append(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { 'data-fact': k }, v ?? '')]));
      clear(list);
      if (!licenses.length) list.append(el('p', { class: 'empty' }, 'No license yet: add one on the Licenses page.'));
      for (const l of licenses) {
        list.append(
          el(
            'article',
            { class: 'card license', 'data-license': String(l.id) },
            el('h3', {}, `${l.product_details?.product_name || l.product_details?.short_code} `, el('small', {}, `#${l.id} ${l.license_type || ''}`)),
            usageBar('Seats', l.floating_in_use_devices ?? 0, l.floating_users, false),
            l.max_consumptions || l.allow_unlimited_consumptions || l.total_consumptions
              ? usageBar('Consumptions', l.total_consumptions ?? 0, l.max_consumptions, l.allow_unlimited_consumptions)
              : null,
            (l.product_features || [])
              .filter((f) => f.is_floating)
              .map((f) => usageBar(`Feature ${f.code}`, f.floating_in_use_devices ?? 0, f.floating_users, false)),
            l.validity_period ? el('p', { class: 'muted' }, `Valid until ${when(l.validity_period)}`) : null,
          ),
        );
      }
    },
  };
}
