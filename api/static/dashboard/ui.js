// Small building blocks shared by the pages: tables, badges, states, the note dialog.
import { t } from './i18n/index.js';
import { esc } from './format.js';

/** A table from `columns` [{label, cell(row) -> html, num?}] and `rows`. */
export function table(columns, rows, { testid = '', empty = t('common.none') } = {}) {
  if (!rows.length) return `<p class="muted" data-testid="${testid}-empty">${esc(empty)}</p>`;
  const head = columns
    .map((c) => `<th${c.num ? ' class="num"' : ''} scope="col">${esc(c.label)}</th>`)
    .join('');
  const body = rows
    .map((r) => `<tr>${columns.map((c) => `<td${c.num ? ' class="num"' : ''}>${c.cell(r)}</td>`).join('')}</tr>`)
    .join('');
  return `<table data-testid="${testid}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

/** A coloured badge that always carries its word. */
export function badge(cls, word) {
  return `<span class="badge ${esc(cls)}">${esc(word)}</span>`;
}

export function unavailable(message, testid = 'unavailable') {
  return `<div class="unavailable" data-testid="${testid}" role="status">${esc(message)}</div>`;
}

export function failure(err) {
  const status = err && err.status ? ` (HTTP ${err.status})` : '';
  return `<p class="error" role="alert" data-testid="error">${esc(t('common.error'))}${status}: ${esc(err && err.message)}</p>`;
}

/** Ask for a note (and an optional evidence reference); resolves to null when cancelled. */
export function askNote({ title, required }) {
  const dialog = document.getElementById('note-dialog');
  const text = document.getElementById('note-text');
  const evidence = document.getElementById('evidence-text');
  const error = document.getElementById('note-error');
  document.getElementById('note-title').textContent = title;
  document.getElementById('note-label').textContent = required ? t('case.note_required') : t('case.note');
  document.getElementById('evidence-label').textContent = t('case.evidence');
  document.getElementById('note-ok').textContent = t('common.ok');
  document.getElementById('note-cancel').textContent = t('common.cancel');
  text.value = '';
  evidence.value = '';
  error.textContent = '';
  return new Promise((resolve) => {
    const form = document.getElementById('note-form');
    const done = (value) => {
      form.removeEventListener('submit', submit);
      cancel.removeEventListener('click', onCancel);
      dialog.close();
      resolve(value);
    };
    const submit = (e) => {
      e.preventDefault();
      const note = text.value.trim();
      if (required && !note) {
        error.textContent = t('case.note_missing');
        return;
      }
      done({ note: note || null, evidence: evidence.value.trim() ? { reference: evidence.value.trim() } : {} });
    };
    const cancel = document.getElementById('note-cancel');
    const onCancel = () => done(null);
    form.addEventListener('submit', submit);
    cancel.addEventListener('click', onCancel);
    dialog.showModal();
    text.focus();
  });
}
