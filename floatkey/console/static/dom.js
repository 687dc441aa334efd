// DOM helpers. Everything the console shows is built with createElement and textContent:
// data from the server (user names, host names, user_info come from clients and are hostile)
// is only ever text, never HTML.

const SVG = 'http://www.w3.org/2000/svg';

function fill(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.setAttribute('class', value);
    else if (name === 'text') node.textContent = String(value);
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An HTML element: el('td', {class: 'num'}, 'text', otherNode). Attribute names come from code. */
export function el(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element, built the same way. */
export function svg(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG, tag), attrs, children);
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

/** A date-time from the API, shown in the browser's locale ('' for null). */
export function when(value) {
  if (!value) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

/** A table in its own scrolling box: columns [{title, value(row), class}], rows. */
export function table(caption, columns, rows, empty = 'Nothing yet.') {
  if (!rows.length) return el('p', { class: 'empty' }, empty);
  return el(
    'div',
    { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': caption },
    el(
      'table',
      {},
      el('caption', { class: 'sr-only' }, caption),
      el('thead', {}, el('tr', {}, columns.map((c) => el('th', { scope: 'col', class: c.class }, c.title)))),
      el(
        'tbody',
        {},
        rows.map((row) => el('tr', {}, columns.map((c) => el('td', { class: c.class }, c.value(row))))),
      ),
    ),
  );
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  input.id = id;
  return el('div', { class: 'field' }, el('label', { for: id }, label), input, hint ? el('small', {}, hint) : null);
}

/** Offer ``blob`` as a file download (the token never goes in a URL). */
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = el('a', { href: url, download: name, class: 'sr-only' }, name);
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
