// Seats: who holds each seat, filter and sort, force-release with a confirmation.

import { api } from './api.js';
import { confirmDialog } from './dialog.js';
import { clear, el, field, table, when } from './dom.js';

export const path = 'seats';
export const title = 'Seats';
export const admin = true;

const COLUMNS = [
  ['product', 'License'],
  ['user', 'User'],
  ['os_hostname', 'Host'],
  ['ip_local', 'Address'],
  ['registered_at', 'Since'],
  ['expires_at', 'Expires'],
  ['borrowed_until', 'Borrowed until'],
];

export function render(main) {
  const filter = el('input', { type: 'search', id: 'seat-filter', placeholder: 'user, host, address…' });
  const sort = el('select', { id: 'seat-sort' }, COLUMNS.map(([k, t]) => el('option', { value: k }, t)));
  const status = el('p', { class: 'status', role: 'status', id: 'seat-status' });
  const box = el('div', { id: 'seats' });
  main.append(el('div', { class: 'toolbar' }, field('Filter', filter), field('Sort by', sort)), status, box);
  let rows = [];
  let last = '';

  function show() {
    const needle = filter.value.trim().toLowerCase();
    const key = sort.value;
    const shown = rows
      .filter((r) => !needle || [r.user, r.os_hostname, r.ip_local, r.user_info, r.product].some((v) => String(v ?? '').toLowerCase().includes(needle)))
      .sort((a, b) => String(a[key] ?? '').localeCompare(String(b[key] ?? '')));
    const columns = COLUMNS.map(([k, t]) => ({
      title: t,
      value: (r) => (k.endsWith('_at') || k === 'borrowed_until' ? when(r[k]) : k === 'product' ? `${r.product} #${r.license_id}` : r[k] ?? ''),
    }));
    columns.splice(2, 0, { title: 'User info', value: (r) => r.user_info ?? '' });
    columns.push({
      title: 'Action',
      value: (r) =>
        el('button', { type: 'button', class: 'danger small', 'data-release': `${r.license_id}/${r.user}`, onclick: () => release(r) }, 'Release'),
    });
    clear(box).append(table('Seats in use', columns, shown, rows.length ? 'No seat matches the filter.' : 'No seat is held.'));
  }

  async function release(r) {
    const ok = await confirmDialog('Release this seat?', `${r.user} loses the seat of ${r.product} #${r.license_id} now.`, 'Release seat');
    if (!ok) return;
    try {
      await api.del(`/api/v4/registrations/${r.license_id}/${encodeURIComponent(r.user)}`);
      status.textContent = `Seat of ${r.user} released.`;
      rows = rows.filter((x) => x !== r);
      show();
    } catch (error) {
      status.textContent = error.message;
    }
  }

  filter.addEventListener('input', show);
  sort.addEventListener('change', show);
  return {
    async update() {
      try {
        const answer = await api.get('/api/v4/registrations');
        const seen = JSON.stringify(answer.registrations);
        if (seen === last) return;
        last = seen;
        rows = answer.registrations;
        show();
      } catch (error) {
        if (error.status === 403) clear(box).append(el('p', { class: 'empty' }, 'Your role does not show seats.'));
        else throw error;
      }
    },
  };
}
