// Licenses: list and details; add a local license, or (vendor mode) import a license file
// and make an activation request; remove with a confirmation.

import { api, session } from './api.js';
import { confirmDialog } from './dialog.js';
import { clear, download, el, field, table, when } from './dom.js';

export const path = 'licenses';
export const title = 'Licenses';

const POLICY = ['license_type', 'floating_users', 'floating_timeout', 'max_borrow_time', 'max_consumptions', 'allow_overages', 'max_overages', 'allow_unlimited_consumptions', 'reset_consumption', 'consumption_period', 'validity_period', 'start_date', 'license_enabled', 'is_trial', 'is_expired'];

function details(l) {
  return el(
    'details',
    { class: 'card license', 'data-license': String(l.id) },
    el('summary', {}, `${l.product_details?.short_code} #${l.id} — ${l.floating_in_use_devices ?? 0}/${l.floating_users} seats`),
    el('dl', { class: 'facts' }, POLICY.filter((k) => l[k] !== undefined && l[k] !== null).flatMap((k) => [el('dt', {}, k.replace(/_/g, ' ')), el('dd', {}, k.endsWith('period') || k === 'start_date' ? (k === 'consumption_period' ? l[k] : when(l[k])) : String(l[k]))]),
      el('dt', {}, 'binding'), el('dd', {}, l.is_hardware_key_auth ? 'bound to a hardware key' : 'not bound to a key'),
      el('dt', {}, 'license key'), el('dd', { class: 'mono' }, l.license_key ?? '')),
    table(`Features of ${l.product_details?.short_code}`, [
      { title: 'Code', value: (f) => f.code },
      { title: 'Type', value: (f) => f.feature_type ?? '' },
      { title: 'Floating', value: (f) => (f.is_floating ? `${f.floating_in_use_devices ?? 0}/${f.floating_users}` : 'no') },
      { title: 'Consumption', value: (f) => (f.feature_type === 'consumption' ? `${f.total_consumptions ?? 0}/${f.max_consumption}` : '') },
      { title: 'Expires', value: (f) => when(f.expiry_date) },
    ], l.product_features || [], 'No features.'),
    session.isAdmin ? el('button', { type: 'button', class: 'danger', 'data-remove': String(l.id), onclick: () => remove(l) }, 'Remove license') : null,
  );
}

let status = null;
let refresh = () => {};

async function remove(l) {
  const ok = await confirmDialog('Remove this license?', `${l.product_details?.short_code} #${l.id} and its ${l.floating_in_use_devices ?? 0} seat(s) in use are removed now.`, 'Remove license');
  if (!ok) return;
  try {
    await api.del(`/api/v4/licenses/${l.id}`);
    status.textContent = `License #${l.id} removed.`;
    refresh();
  } catch (error) {
    status.textContent = error.message;
  }
}

function localForm() {
  const product = el('input', { name: 'product', id: 'lic-product', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9._-]*', autocomplete: 'off' });
  const name = el('input', { name: 'product_name', id: 'lic-name', autocomplete: 'off' });
  const seats = el('input', { type: 'number', id: 'lic-seats', min: '1', value: '5', required: true });
  const timeout = el('input', { type: 'number', id: 'lic-timeout', min: '1', value: '30' });
  const consumptions = el('input', { type: 'number', id: 'lic-consumptions', min: '0', value: '0' });
  const key = el('input', { type: 'checkbox', id: 'lic-key' });
  const form = el('form', { class: 'card', id: 'add-license' }, el('h2', {}, 'Add a license'),
    field('Product code', product), field('Product name', name), field('Seats', seats), field('Seat timeout (minutes)', timeout),
    field('Consumptions allowed (0: none)', consumptions), el('div', { class: 'field check' }, key, el('label', { for: 'lic-key' }, 'Bind to the hardware key')),
    el('button', { type: 'submit' }, 'Add license'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const policy = { product: product.value, floating_users: Number(seats.value), floating_timeout: Number(timeout.value), max_consumptions: Number(consumptions.value), isHWKeyReq: key.checked };
    if (name.value) policy.product_name = name.value;
    try {
      const added = await api.post('/api/v4/licenses', policy);
      status.textContent = `License ${added.product_details?.short_code} #${added.id} added.`;
      form.reset();
      refresh();
    } catch (error) {
      status.textContent = error.message;
    }
  });
  return form;
}

function vendorForms() {
  const file = el('input', { type: 'file', id: 'lic-file', accept: '.lic,.txt,text/plain', required: true });
  const upload = el('form', { class: 'card', id: 'import-license' }, el('h2', {}, 'Import a vendor license file'),
    el('p', {}, 'This server installs only licenses its vendor signed.'), field('License or refresh file', file), el('button', { type: 'submit' }, 'Import'));
  upload.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!file.files.length) return;
    try {
      const installed = await api.post('/api/v4/license/upload', file.files[0]);
      status.textContent = `License ${installed.product_details?.short_code} #${installed.id} installed (sequence ${installed.sequence}).`;
      upload.reset();
      refresh();
    } catch (error) {
      status.textContent = error.message;
    }
  });
  const product = el('input', { id: 'req-product', required: true, autocomplete: 'off' });
  const request = el('form', { class: 'card', id: 'activation-request' }, el('h2', {}, 'Make an activation request'),
    el('p', {}, 'Send the file to your vendor; they answer with a license file for this server.'), field('Product code', product), el('button', { type: 'submit' }, 'Download request'));
  request.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const made = await api.post('/api/v4/license/generate', { product: product.value });
      download(new Blob([JSON.stringify(made, null, 2)], { type: 'application/json' }), `activation-request-${product.value}.json`);
      status.textContent = 'Activation request made.';
    } catch (error) {
      status.textContent = error.message;
    }
  });
  return [upload, request];
}

export function render(main) {
  status = el('p', { class: 'status', role: 'status', id: 'license-status' });
  const list = el('div', { id: 'licenses' });
  const forms = el('div', { class: 'forms' });
  main.append(status, list, forms);
  let last = '';
  let source = '';
  let shown = [];
  refresh = () => {
    last = '';
  };
  return {
    async update({ health, licenses }) {
      if (session.isAdmin && health.license_source !== source) {
        source = health.license_source;
        clear(forms).append(...(source === 'vendor' ? vendorForms() : [localForm()]));
      }
      const seen = JSON.stringify(licenses);
      if (seen === last) return;
      last = seen;
      const open = new Set([...list.querySelectorAll('details[open]')].map((d) => d.dataset.license));
      shown = licenses.map(details);
      for (const d of shown) if (open.has(d.dataset.license)) d.open = true;
      clear(list).append(...(shown.length ? shown : [el('p', { class: 'empty' }, 'No license yet.')]));
    },
  };
}
