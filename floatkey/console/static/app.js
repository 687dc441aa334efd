// The console: login, navigation by hash (#/seats), the alert line and the live refresh.
//
// Live: while the tab is visible the console polls the small JSON routes about once a
// second (health, licenses, and what the open page shows). No request stays open between
// polls: the server's worker threads are a fixed pool.

import { api, detectMode, login, logout, onUnauthorized, session } from './api.js';
import { clear, el, field } from './dom.js';
import { alerts } from './alerts.js';
import * as overview from './overview.js';
import * as licenses from './licenses.js';
import * as seats from './seats.js';
import * as key from './key.js';
import * as users from './users.js';
import * as usage from './usage.js';

const PAGES = [overview, licenses, seats, key, users, usage];
const POLL_MS = 1000;
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const alertLine = document.getElementById('alert');

let current = null; // {page, view}
let timer = null;
let busy = false;

function allowed(page) {
  if (page.authOnly && session.mode !== 'authentication') return false;
  return !page.admin || session.isAdmin;
}

function pageFor(hash) {
  const path = hash.replace(/^#\/?/, '') || 'overview';
  return PAGES.find((p) => p.path === path && allowed(p)) || PAGES[0];
}

function showNav() {
  clear(nav).append(
    el(
      'ul',
      {},
      PAGES.filter(allowed).map((p) =>
        el('li', {}, el('a', { href: `#/${p.path}`, 'data-page': p.path }, p.title)),
      ),
    ),
  );
  clear(who);
  if (session.mode === 'authentication' && session.token) {
    who.append(
      el('span', { class: 'user' }, `${session.username} (${session.role})`),
      el('button', { type: 'button', class: 'secondary', id: 'logout', onclick: signOut }, 'Log out'),
    );
  } else if (session.mode === 'open') {
    who.append(el('span', { class: 'user' }, 'open mode'));
  }
}

function markCurrent(page) {
  for (const link of nav.querySelectorAll('a')) {
    if (link.dataset.page === page.path) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

async function tick() {
  if (busy || !current) return;
  busy = true;
  const shown = current;
  try {
    const [health, licenseList] = await Promise.all([api.get('/api/v4/health'), api.get('/api/v4/license')]);
    const state = { health, licenses: licenseList };
    showAlerts(alerts(state));
    if (current === shown) await updatePage(shown, state);
    main.dataset.updated = String(Date.now());
  } catch (error) {
    if (error.status !== 401) showAlerts([`The server does not answer: ${error.message}`]);
  } finally {
    busy = false;
  }
}

/** A page's refresh; a 403 (a role or a network the server does not let see it) is said on the page. */
async function updatePage(shown, state) {
  const note = main.querySelector('.refused');
  try {
    await shown.view.update(state);
    note?.remove();
  } catch (error) {
    if (error.status !== 403) throw error;
    if (!note) main.append(el('p', { class: 'status refused', role: 'status' }, `The server refuses this page to you: ${error.message}`));
  }
}

function showAlerts(lines) {
  alertLine.hidden = lines.length === 0;
  alertLine.textContent = lines.join(' ');
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    if (document.visibilityState === 'visible') await tick();
    schedule();
  }, POLL_MS);
}

async function route() {
  if (!session.mode || (session.mode === 'authentication' && !session.token)) return;
  const page = pageFor(location.hash);
  markCurrent(page);
  document.title = `${page.title} · floatkey`;
  clear(main);
  delete main.dataset.updated; // set again by this page's first refresh
  main.append(el('h1', {}, page.title));
  current = { page, view: page.render(main) };
  await tick();
  schedule();
}

function showLogin(message) {
  clearTimeout(timer);
  current = null;
  clear(nav);
  clear(who);
  showAlerts([]);
  const username = el('input', { name: 'username', autocomplete: 'username', required: true });
  const password = el('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const status = el('p', { class: 'status', role: 'status' }, message || '');
  const form = el(
    'form',
    { class: 'card narrow', id: 'login' },
    field('Username', username),
    field('Password', password),
    el('button', { type: 'submit' }, 'Log in'),
    status,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    status.textContent = 'Logging in…';
    try {
      const answer = await login(username.value, password.value);
      if (answer.must_change_password) showPasswordChange(password.value);
      else start();
    } catch (error) {
      status.textContent = error.message;
    }
  });
  clear(main).append(el('h1', {}, 'Log in'), form);
  username.focus();
}

/** The first login of the initial admin: the server allows nothing else until this is done. */
function showPasswordChange(old) {
  const fresh = el('input', { type: 'password', name: 'new-password', autocomplete: 'new-password', minlength: '12', required: true });
  const again = el('input', { type: 'password', name: 'new-password-again', autocomplete: 'new-password', required: true });
  const status = el('p', { class: 'status', role: 'status' });
  const form = el(
    'form',
    { class: 'card narrow', id: 'change-password' },
    el('p', {}, 'Change your initial password before you go on.'),
    field('New password', fresh, 'At least 12 characters, not your username.'),
    field('New password again', again),
    el('button', { type: 'submit' }, 'Change password'),
    status,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (fresh.value !== again.value) {
      status.textContent = 'The two new passwords differ.';
      return;
    }
    try {
      const path = `/api/v4/users/${encodeURIComponent(session.username)}/password`;
      const answer = await api.post(path, { password: fresh.value, old_password: old });
      session.set(answer.token);
      start();
    } catch (error) {
      status.textContent = error.message;
    }
  });
  clear(main).append(el('h1', {}, 'Change your password'), form);
  fresh.focus();
}

function signOut() {
  logout();
  showLogin('Logged out.');
}

function start() {
  showNav();
  route();
}

onUnauthorized.add(() => {
  if (session.mode === 'authentication') {
    session.set(null);
    showLogin('Your session has ended; log in again.');
  }
});
window.addEventListener('hashchange', route);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') tick();
});

(async () => {
  await detectMode();
  if (session.mode === 'authentication' && !session.token) showLogin();
  else start();
})();
