// Modal dialogs on the native <dialog>: focus moves into it, Escape closes it (as Cancel),
// and focus returns to where it was.

import { clear, el } from './dom.js';

/** Open ``dialog`` with ``focus`` focused; when it closes, give focus back to where it
 * was and call ``closed``. */
function show(dialog, focus, closed) {
  const before = document.activeElement;
  dialog.addEventListener(
    'close',
    () => {
      if (before instanceof HTMLElement && before.isConnected) before.focus();
      closed();
    },
    { once: true },
  );
  dialog.showModal();
  focus.focus();
}

/** Ask ``question``; resolves true when the person confirms with ``action``. */
export function confirmDialog(title, question, action) {
  const dialog = document.getElementById('dialog');
  return new Promise((resolve) => {
    let answer = false;
    const cancel = el('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel');
    const confirm = el(
      'button',
      {
        type: 'button',
        class: 'danger',
        onclick: () => {
          answer = true;
          dialog.close();
        },
      },
      action,
    );
    clear(dialog).append(
      el('h2', { id: 'dialog-title' }, title),
      el('p', {}, question),
      el('div', { class: 'actions' }, cancel, confirm),
    );
    show(dialog, cancel, () => resolve(answer));
  });
}

/** Ask for one value (a new password): resolves the text, or null when cancelled. */
export function askDialog(title, label, { type = 'text', hint = '', action = 'Save' } = {}) {
  const dialog = document.getElementById('dialog');
  return new Promise((resolve) => {
    let answer = null;
    const input = el('input', { type, id: 'dialog-input', autocomplete: type === 'password' ? 'new-password' : 'off', required: true });
    const form = el(
      'form',
      {},
      el('h2', { id: 'dialog-title' }, title),
      el('div', { class: 'field' }, el('label', { for: 'dialog-input' }, label), input, hint ? el('small', {}, hint) : null),
      el(
        'div',
        { class: 'actions' },
        el('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel'),
        el('button', { type: 'submit' }, action),
      ),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      answer = input.value;
      dialog.close();
    });
    clear(dialog).append(form);
    show(dialog, input, () => resolve(answer));
  });
}
