// Hardware key: every key seen, its state and why, since when.

import { api } from './api.js';
import { clear, el, table, when } from './dom.js';

export const path = 'key';
export const title = 'Hardware key';
export const admin = true;

export function render(main) {
  const summary = el('p', { id: 'key-summary', class: 'lead' });
  const box = el('div', { id: 'keys' });
  main.append(summary, box);
  let last = '';
  return {
    async update() {
      const status = await api.get('/api/v4/hardware_key');
      const seen = JSON.stringify(status);
      if (seen === last) return;
      last = seen;
      const keys = status.keys || [];
      summary.textContent = `PC/SC service: ${status.pcsc}. Hardware ID: ${status.hardware_id}. ${
        keys.length ? `${keys.length} key(s) present.` : 'No key present.'
      }`;
      clear(box).append(
        table(
          'Hardware keys',
          [
            { title: 'Serial', value: (k) => k.serial ?? '' },
            { title: 'Reader', value: (k) => k.reader ?? '' },
            { title: 'State', value: (k) => el('span', { class: `state ${k.state}` }, k.state) },
            { title: 'Why', value: (k) => k.reason ?? '' },
            { title: 'Since', value: (k) => when(k.since) },
          ],
          keys,
          'No key is plugged in.',
        ),
      );
    },
  };
}
