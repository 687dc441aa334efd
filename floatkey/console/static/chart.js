// A small hand-written SVG chart: lines or bars over time, no dependency.
// Each point carries data-time and data-value, so what is drawn can be checked against the API.

import { el, svg } from './dom.js';

const W = 640;
const H = 200;
const PAD = { left: 40, right: 12, top: 12, bottom: 28 };

/**
 * series: [{name, class, kind: 'line'|'bar', points: [{time, value}]}], all on one time axis.
 */
export function chart(label, series) {
  const all = series.flatMap((s) => s.points);
  const times = all.map((p) => Date.parse(p.time));
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const top = Math.max(1, ...all.map((p) => p.value));
  const x = (t) => PAD.left + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'chart' });
  root.append(svg('title', {}, label));
  for (const tick of [0, Math.round(top / 2), top]) {
    root.append(
      svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(tick), y2: y(tick), class: 'grid' }),
      svg('text', { x: PAD.left - 6, y: y(tick) + 4, class: 'axis', 'text-anchor': 'end' }, String(tick)),
    );
  }
  if (all.length) {
    for (const [t, anchor] of [[t0, 'start'], [t1, 'end']]) {
      root.append(svg('text', { x: x(t), y: H - 8, class: 'axis', 'text-anchor': anchor }, new Date(t).toLocaleString()));
    }
  }
  const slot = all.length ? Math.max(2, (W - PAD.left - PAD.right) / Math.max(1, series[0].points.length) - 2) : 0;
  for (const s of series) {
    const group = svg('g', { class: `series ${s.class}`, 'data-series': s.name });
    if (s.kind === 'line') {
      const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${x(Date.parse(p.time)).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
      if (d) group.append(svg('path', { d, class: 'line' }));
    }
    for (const p of s.points) {
      const cx = x(Date.parse(p.time));
      const attrs = { 'data-time': p.time, 'data-value': String(p.value), class: 'point' };
      const mark =
        s.kind === 'bar'
          ? svg('rect', { ...attrs, x: (cx - slot / 2).toFixed(1), y: y(p.value).toFixed(1), width: slot.toFixed(1), height: (H - PAD.bottom - y(p.value)).toFixed(1) })
          : svg('circle', { ...attrs, cx: cx.toFixed(1), cy: y(p.value).toFixed(1), r: '2.5' });
      mark.append(svg('title', {}, `${new Date(p.time).toLocaleString()}: ${p.value} ${s.name}`));
      group.append(mark);
    }
    root.append(group);
  }
  const legend = el('ul', { class: 'legend' }, series.map((s) => el('li', { class: s.class }, s.name)));
  return el('figure', { class: 'chart-box' }, root, el('figcaption', {}, label, legend));
}
