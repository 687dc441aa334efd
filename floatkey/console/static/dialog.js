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
