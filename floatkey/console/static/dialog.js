// Modal dialogs on the native <dialog>: focus moves into it, Escape closes it (as Cancel),
// and focus returns to where it was.

import { clear, el } from './dom.js';

/** Ask ``question``; resolves true when the person confirms with ``action``. */
export function confirmDialog(title, question, action) {
  const dialog = document.getElementById('dialog');
  const before = document.activeElement;
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
    dialog.addEventListener(
      'close',
      () => {
        if (before instanceof HTMLElement && before.isConnected) before.focus();
        resolve(answer);
      },
      { once: true },
    );
    dialog.showModal();
    cancel.focus();
  });
}

/** Ask for one value (a new password): resolves the text, or null when cancelled. */
export function askDialog(title, label, { type = 'text', hint = '', action = 'Save' } = {}) {
  const dialog = document.getElementById('dialog');
  const before = document.activeElement;
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
    dialog.addEventListener(
      'close',
      () => {
        if (before instanceof HTMLElement && before.isConnected) before.focus();
        resolve(answer);
      },
      { once: true },
    );
    dialog.showModal();
    input.focus();
  });
}
