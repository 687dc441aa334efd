// Hardware key: every key seen, its state and why, since when.

import { api } from './api.js';
import { clear, el, table, when } from './dom.js';

export const path = 'key';
export const title = 'Hardware key';
export const admin = true;

/** What floatkey doctor finds (PC/SC, readers, who is connected to pcscd), on demand. */
function doctorSection() {
  const box = el('div', { id: 'doctor' });
  const status = el('p', { class: 'status', role: 'status' });
  async function check() {
    status.textContent = 'Checking…';
    try {
      const found = await api.get('/api/v4/hardware_key/doctor');
      status.textContent = '';
      const clients = found.pcscd_clients;
      clear(box).append(
        el('p', { id: 'doctor-pcsc' }, found.pcsc === 'running' ? 'PC/SC service: running.' : found.pcsc_detail),
        table('Readers', [
          { title: 'Reader', value: (r) => r.name + (r.ignored ? ' (ignored by hardwareKey.ignoreReaders)' : '') },
          { title: 'Card', value: (r) => (r.card_present ? 'present' : 'none') },
          { title: 'ATR', value: (r) => r.atr ?? '' },
        ], found.readers, 'No reader: is the key plugged in?'),
        el('h3', {}, 'Processes connected to pcscd'),
        clients === null
          ? el('p', { class: 'empty' }, 'Unknown here (Linux with ss from iproute2 lists them).')
          : el('ul', { id: 'doctor-clients' }, clients.map((c) => el('li', {}, c))),
      );
    } catch (error) {
      status.textContent = error.message;
    }
  }
  check();
  return el('section', { class: 'card' }, el('h2', {}, 'What floatkey doctor finds'),
    el('p', {}, 'Read from pcscd without touching a card; a process holding the reader is among those connected.'),
    el('button', { type: 'button', class: 'secondary', id: 'doctor-again', onclick: check }, 'Check again'), status, box);
}

export function render(main) {
  const summary = el('p', { id: 'key-summary', class: 'lead' });
  const box = el('div', { id: 'keys' });
  main.append(summary, box, doctorSection());
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
