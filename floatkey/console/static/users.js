// Users (authentication mode): add, change role, reset password, delete.

import { api, session } from './api.js';
import { askDialog, confirmDialog } from './dialog.js';
import { clear, el, field, table, when } from './dom.js';

export const path = 'users';
export const title = 'Users';
export const admin = true;
export const authOnly = true;

function roleSelect(value, id) {
  const select = el('select', { id }, ['user', 'admin'].map((r) => el('option', { value: r }, r)));
  select.value = value;
  return select;
}

export function render(main) {
  const status = el('p', { class: 'status', role: 'status', id: 'user-status' });
  const box = el('div', { id: 'users' });
  const username = el('input', { name: 'new-username', autocomplete: 'off', required: true, id: 'new-username' });
  const password = el('input', { type: 'password', name: 'new-user-password', autocomplete: 'new-password', required: true, id: 'new-user-password' });
  const role = roleSelect('user', 'new-user-role');
  const form = el('form', { class: 'card', id: 'add-user' }, el('h2', {}, 'Add a user'), field('Username', username), field('Password', password, 'At least 12 characters.'), field('Role', role), el('button', { type: 'submit' }, 'Add user'));
  main.append(status, box, form);
  let last = '';

  async function act(what, done) {
    try {
      await what();
      status.textContent = done;
      last = '';
      await update();
    } catch (error) {
      status.textContent = error.message;
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    act(() => api.post('/api/v4/users', { username: username.value, password: password.value, role: role.value }), `User ${username.value} added.`).then(() => form.reset());
  });

  function actions(u) {
    const name = encodeURIComponent(u.username);
    const change = roleSelect(u.role, `role-${u.username}`);
    change.setAttribute('aria-label', `Role of ${u.username}`);
    change.addEventListener('change', () => act(() => api.post(`/api/v4/users/${name}/role`, { role: change.value }), `${u.username} is now ${change.value}.`));
    const reset = el('button', {
      type: 'button',
      class: 'secondary small',
      'data-reset': u.username,
      onclick: async () => {
        const fresh = await askDialog(`Reset the password of ${u.username}`, 'New password', { type: 'password', hint: 'At least 12 characters; their tokens stop working.', action: 'Reset password' });
        if (fresh) act(() => api.post(`/api/v4/users/${name}/password`, { password: fresh }), `Password of ${u.username} reset.`);
      },
    }, 'Reset password');
    const remove = el('button', {
      type: 'button',
      class: 'danger small',
      onclick: async () => {
        if (await confirmDialog('Delete this user?', `${u.username} can no longer log in; their tokens stop working.`, 'Delete user')) {
          act(() => api.del(`/api/v4/users/${name}`), `User ${u.username} deleted.`);
        }
      },
    }, 'Delete');
    return el('span', { class: 'row-actions' }, change, reset, u.username === session.username ? null : remove);
  }

  async function update() {
    const answer = await api.get('/api/v4/users');
    const seen = JSON.stringify(answer.users);
    if (seen === last) return;
    last = seen;
    clear(box).append(
      table('Users', [
        { title: 'User', value: (u) => u.username },
        { title: 'Role', value: (u) => u.role },
        { title: 'Created', value: (u) => when(u.created_at) },
        { title: 'Must change password', value: (u) => (u.must_change_password ? 'yes' : 'no') },
        { title: 'Actions', value: actions },
      ], answer.users),
    );
  }
  return { update };
}
