// A notice case: its history and the actions this key may take.
import { get, ApiError } from '../api.js';
import { t } from '../i18n/index.js';
import { esc } from '../format.js';
import { table, badge, unavailable } from '../ui.js';
import { buttons, fill } from './actions.js';

export async function render(view, { arg }) {
  let found;
  try {
    found = await get(`/v1/notice-cases/${encodeURIComponent(arg)}`);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 403 || err.status === 404)) {
      view.innerHTML = unavailable(err.status === 403 ? t('case.not_yours') : t('case.missing'), 'case-refused');
      return;
    }
    throw err;
  }
  const c = found.case;
  view.innerHTML = `<h1>${esc(t('case.title', { id: c.id }))}</h1>
    <div class="panel"><dl class="facts">
      <dt>${esc(t('notice.problem'))}</dt><dd>${esc(c.problem)}</dd>
      <dt>${esc(t('common.town'))}</dt><dd>${esc(c.town)}</dd>
      <dt>${esc(t('notice.status'))}</dt><dd data-testid="case-status">${badge('c-none', t(`status.${c.status}`))}</dd>
      <dt>${esc(t('notice.deadline'))}</dt><dd>${esc(c.deadline)}</dd>
      <dt>${esc(t('case.first_week'))}</dt><dd>${esc(c.first_week)}</dd>
      <dt>${esc(t('case.firm'))}</dt><dd><a href="#/firm/${c.firm_id}">${c.firm_id}</a></dd>
    </dl>
    <h2>${esc(t('case.actions'))}</h2><div id="case-actions">${buttons(c.id, found.allowed)}</div>
    <p role="status" data-testid="action-status"></p></div>
    <div class="panel"><h2>${esc(t('case.history'))}</h2>${table([
      { label: t('case.at'), cell: (e) => esc(e.at.replace('T', ' ').slice(0, 19)) },
      { label: t('case.action'), cell: (e) => esc(t(`action.${e.action}`)) },
      { label: t('notice.status'), cell: (e) => `${esc(e.from_status ? t(`status.${e.from_status}`) : '')} → ${esc(t(`status.${e.to_status}`))}` },
      { label: t('case.actor'), cell: (e) => esc(e.actor) },
      { label: t('case.note'), cell: (e) => esc(e.note || '') },
    ], found.events, { testid: 'case-history' })}</div>`;
  await fill(view, () => {
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  });
}
