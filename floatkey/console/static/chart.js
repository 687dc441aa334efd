// A small hand-written SVG chart: lines or bars over time, no dependency.
// Each point carries data-time and data-value, so what is drawn can be checked against the API.

import { el, svg } from './dom.js';

const W = 640;
const H = 200;
const PAD = { left: 40, right: 12, top: 12, bottom: 28 };

/**
 * series: [{name, class, kind: 'line'|'bar', points: [{time, value}]}], all on the same
 * points in time (the API's buckets), drawn in equal slots from left to right.
 */
export function chart(label, series) {
  const count = Math.max(0, ...series.map((s) => s.points.length));
  const top = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.value)));
  const slot = (W - PAD.left - PAD.right) / Math.max(1, count);
  const x = (i) => PAD.left + (i + 0.5) * slot;
  const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'chart' });
  root.append(svg('title', {}, label));
  for (const tick of new Set([0, Math.round(top / 2), top])) {
    root.append(
      svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(tick), y2: y(tick), class: 'grid' }),
      svg('text', { x: PAD.left - 6, y: y(tick) + 4, class: 'axis', 'text-anchor': 'end' }, String(tick)),
    );
  }
  const first = series[0]?.points || [];
  if (first.length) {
    const label = (p) => new Date(p.time).toLocaleString();
    root.append(svg('text', { x: PAD.left, y: H - 8, class: 'axis', 'text-anchor': 'start' }, label(first[0])));
    if (first.length > 1) {
      root.append(svg('text', { x: W - PAD.right, y: H - 8, class: 'axis', 'text-anchor': 'end' }, label(first.at(-1))));
    }
  }
  const width = Math.min(40, Math.max(1, slot - 2));
  // Dense lines need no dots; the marks stay (without a radius) so each point keeps its data.
  const radius = count > 48 ? '0' : '2.5';
  for (const s of series) {
    const group = svg('g', { class: `series ${s.class}`, 'data-series': s.name });
    if (s.kind === 'line' && s.points.length) {
      const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
      group.append(svg('path', { d, class: 'line' }));
    }
    s.points.forEach((p, i) => {
      const attrs = { 'data-time': p.time, 'data-value': String(p.value), class: 'point' };
      const mark =
        s.kind === 'bar'
          ? svg('rect', { ...attrs, x: (x(i) - width / 2).toFixed(1), y: y(p.value).toFixed(1), width: width.toFixed(1), height: (H - PAD.bottom - y(p.value)).toFixed(1) })
          : svg('circle', { ...attrs, cx: x(i).toFixed(1), cy: y(p.value).toFixed(1), r: radius });
      mark.append(svg('title', {}, `${new Date(p.time).toLocaleString()}: ${p.value} ${s.name}`));
      group.append(mark);
    });
    root.append(group);
  }
  const legend = el('ul', { class: 'legend' }, series.map((s) => el('li', { class: s.class }, s.name)));
  return el('figure', { class: 'chart-box' }, root, el('figcaption', {}, label, legend));
}
