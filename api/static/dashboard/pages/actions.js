// The lifecycle buttons of a notice case: only the actions the API says this key may take.
import { get, post, ApiError } from '../api.js';
import { t } from '../i18n/index.js';
import { esc } from '../format.js';
import { askNote } from '../ui.js';

const NEEDS_NOTE = new Set(['feedback', 'resolve']);

export function buttons(caseId, allowed) {
  if (!allowed.length) return `<span class="muted" data-testid="no-actions-${caseId}">${esc(t('case.no_actions'))}</span>`;
  return `<div class="actions">${allowed
    .map((a) => `<button type="button" data-case="${caseId}" data-action="${esc(a)}" data-testid="act-${a}-${caseId}">${esc(t(`action.${a}`))}</button>`)
    .join('')}</div>`;
}

/** Ask for what the action needs and send it; resolves to the new case, or null. */
export async function act(caseId, action) {
  const required = NEEDS_NOTE.has(action);
  let body = { action };
  if (required || action === 'escalate') {
    const answer = await askNote({ title: t(`action.${action}`), required });
    if (answer === null) return null;
    body = { action, note: answer.note, evidence: answer.evidence };
  }
  try {
    return await post(`/v1/notice-cases/${caseId}/transitions`, body);
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && err.problem.allowed) {
      throw new ApiError(409, { detail: `${err.message} (${t('case.allowed')}: ${err.problem.allowed.map((a) => t(`action.${a}`)).join('、') || '—'})` });
    }
    throw err;
  }
}

/** Load a case's allowed actions into each `[data-actions]` cell, a few at a time. */
export async function fill(root, onDone) {
  const cells = [...root.querySelectorAll('[data-actions]')];
  const queue = cells.slice();
  const worker = async () => {
    while (queue.length) {
      const cell = queue.shift();
      const id = cell.dataset.actions;
      try {
        const found = await get(`/v1/notice-cases/${id}`);
        const now = `<span data-testid="current-${id}">${esc(t(`status.${found.case.status}`))}</span>`;
        cell.innerHTML = `<small class="muted">${esc(t('case.now'))}</small> ${now}${buttons(id, found.allowed)}`;
      } catch (err) {
        cell.innerHTML = `<span class="muted" data-testid="no-actions-${esc(id)}">${esc(err.status === 403 ? t('case.not_yours') : err.message)}</span>`;
      }
    }
  };
  await Promise.all([1, 2, 3, 4, 5, 6].map(worker));
  root.addEventListener('click', async (e) => {
    const button = e.target.closest('button[data-action]');
    if (!button) return;
    const status = root.querySelector('[data-testid="action-status"]');
    button.disabled = true;
    try {
      const updated = await act(button.dataset.case, button.dataset.action);
      if (updated && status) status.textContent = t('case.done', { status: t(`status.${updated.status}`) });
      if (updated) onDone(updated);
    } catch (err) {
      if (status) status.textContent = `${t('common.error')}: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return cells.length;
}
