// Usage: per license, seats in use over time, peak and denials per day, consumption,
// over a day, week, month or year; CSV export of the same points.

import { api, query } from './api.js';
import { chart } from './chart.js';
import { clear, download, el, field, table } from './dom.js';

export const path = 'usage';
export const title = 'Usage';
export const admin = true;

const DAY = 86_400_000;
//: Each range: its length and the step of its points (seconds), at most a few hundred points.
const RANGES = {
  day: { span: DAY, step: 900 },
  week: { span: 7 * DAY, step: 3600 },
  month: { span: 30 * DAY, step: 21_600 },
  year: { span: 365 * DAY, step: 86_400 },
};
const REFRESH_MS = 10_000;

const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const EMPTY = { seats_in_use: 0, peak: 0, consumptions: 0, denials: {} };
/** A point of the license (code '') or of one of its features (none recorded: zeros). */
const pick = (p, code) => (code ? { ...EMPTY, ...(p.features?.[code] || {}), time: p.time } : p);
const denied = (p) => Object.values(p.denials || {}).reduce((a, b) => a + b, 0);

export function render(main) {
  const license = el('select', { id: 'usage-license' });
  const range = el('select', { id: 'usage-range' }, Object.keys(RANGES).map((r) => el('option', { value: r }, r)));
  const series = el('select', { id: 'usage-series' }, el('option', { value: '' }, 'whole license'));
  const exportButton = el('button', { type: 'button', id: 'usage-export' }, 'Export CSV');
  const status = el('p', { class: 'status', role: 'status' });
  const charts = el('div', { id: 'usage-charts' });
  main.append(el('div', { class: 'toolbar' }, field('License', license), field('Range', range), field('Series', series), exportButton), status, charts);
  let loadedAt = 0;
  let shownKey = '';
  let params = null;

  function windowOf() {
    const r = RANGES[range.value];
    const now = Date.now();
    const to = Math.ceil(now / 60_000) * 60_000 + 60_000;
    return { license_id: license.value, from: iso(to - r.span), to: iso(to), step: String(r.step) };
  }

  async function load() {
    if (!license.value) {
      clear(charts).append(el('p', { class: 'empty' }, 'No license yet.'));
      return;
    }
    params = windowOf();
    const dayFrom = Math.floor(Date.parse(params.from) / DAY) * DAY;
    const [points, days] = await Promise.all([
      api.get(`/api/v4/usage?${query(params)}`),
      api.get(`/api/v4/usage?${query({ license_id: params.license_id, from: iso(dayFrom), to: params.to, step: 'day' })}`),
    ]);
    exportButton.dataset.query = query(params);
    showSeries(points.buckets);
    const code = series.value;
    const b = points.buckets.map((p) => pick(p, code));
    const perDay = days.buckets.map((p) => pick(p, code));
    clear(charts).append(
      el('div', { class: 'charts' }, chart('Seats in use', [
        { name: 'seats in use', class: 's-seats', kind: 'line', points: b.map((p) => ({ time: p.time, value: p.seats_in_use })) },
        { name: 'peak', class: 's-peak', kind: 'line', points: b.map((p) => ({ time: p.time, value: p.peak })) },
      ]),
      chart('Denials per day', [
        { name: 'denials', class: 's-denials', kind: 'bar', points: perDay.map((p) => ({ time: p.time, value: denied(p) })) },
      ]),
      chart('Consumptions', [
        { name: 'consumptions', class: 's-consumptions', kind: 'bar', points: b.map((p) => ({ time: p.time, value: p.consumptions })) },
      ])),
      el('h2', {}, 'Per day'),
      table(
        'Peak and denials per day',
        [
          { title: 'Day', value: (p) => p.time.slice(0, 10) },
          { title: 'Peak seats', value: (p) => p.peak, class: 'num' },
          { title: 'Denials', value: (p) => denied(p), class: 'num' },
          { title: 'Denials by code', value: (p) => Object.entries(p.denials || {}).map(([c, n]) => `${c}: ${n}`).join(', ') },
          { title: 'Consumptions', value: (p) => p.consumptions, class: 'num' },
        ],
        [...perDay].reverse(),
      ),
    );
    loadedAt = Date.now();
  }

  async function exportCsv() {
    try {
      const answer = await api.raw(`/api/v4/usage.csv?${exportButton.dataset.query || query(windowOf())}`);
      download(await answer.blob(), `usage-${license.value}-${range.value}.csv`);
      status.textContent = 'CSV exported.';
    } catch (error) {
      status.textContent = error.message;
    }
  }

  /** The series to choose from: the license and every feature its points name. */
  function showSeries(buckets) {
    const codes = [...new Set(buckets.flatMap((p) => Object.keys(p.features || {})))].sort();
    const key = codes.join('\n');
    if (series.dataset.codes === key) return;
    series.dataset.codes = key;
    const chosen = series.value;
    clear(series).append(el('option', { value: '' }, 'whole license'), ...codes.map((c) => el('option', { value: c }, `feature ${c}`)));
    if (codes.includes(chosen)) series.value = chosen;
  }

  series.addEventListener('change', () => load().catch((e) => (status.textContent = e.message)));
  range.addEventListener('change', () => load().catch((e) => (status.textContent = e.message)));
  license.addEventListener('change', () => {
    series.value = '';
    load().catch((e) => (status.textContent = e.message));
  });
  exportButton.addEventListener('click', exportCsv);
  return {
    async update({ licenses }) {
      const key = JSON.stringify(licenses.map((l) => [l.id, l.product_details?.short_code]));
      if (key !== shownKey) {
        shownKey = key;
        const chosen = license.value;
        clear(license).append(...licenses.map((l) => el('option', { value: String(l.id) }, `${l.product_details?.short_code} #${l.id}`)));
        if (licenses.some((l) => String(l.id) === chosen)) license.value = chosen;
        loadedAt = 0;
      }
      if (Date.now() - loadedAt >= REFRESH_MS) await load();
    },
  };
}
