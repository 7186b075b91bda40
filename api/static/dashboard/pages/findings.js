// Findings of the weekly rules, filtered by rule, severity, town, week and status.
import { get } from '../api.js';
import { t, lang, named } from '../i18n/index.js';
import { esc, mondayOf, isoWeek } from '../format.js';
import { table, badge } from '../ui.js';
import zh from '../i18n/zh.js';

const PAGE = 100;
const SEVERITIES = ['high', 'medium', 'low', 'info'];

function select(name, value, options, testid) {
  const opts = [['', t('common.all')], ...options]
    .map(([v, label]) => `<option value="${esc(v)}"${v === value ? ' selected' : ''}>${esc(label)}</option>`)
    .join('');
  return `<label>${esc(t(`findings.${name}`))}<select name="${name}" data-testid="${testid}">${opts}</select></label>`;
}

export async function render(view, { params, caps, navigate }) {
  const offset = Number(params.offset || 0);
  const filters = {
    rule: params.rule || '',
    severity: params.severity || '',
    town: params.town || '',
    week: params.week || '',
    status: params.status || '',
  };
  const page = await get('/v1/findings', {
    ...filters,
    week: filters.week ? mondayOf(filters.week) : '',
    limit: PAGE,
    offset,
  });
  const rules = new Set(Object.keys(zh.rule));
  page.items.forEach((f) => rules.add(f.rule));
  const towns = (caps.towns || []).map((x) => [x.name, x.name]);
  view.innerHTML = `<h1>${esc(t('findings.title'))}</h1>
    <form class="filters" id="filters">
      ${select('rule', filters.rule, [...rules].map((r) => [r, named('rule', r)]), 'filter-rule')}
      ${select('severity', filters.severity, SEVERITIES.map((s) => [s, t(`severity.${s}`)]), 'filter-severity')}
      ${caps.town ? '' : select('town', filters.town, towns, 'filter-town')}
      <label>${esc(t('findings.week'))}<input type="week" name="week" value="${esc(filters.week)}" data-testid="filter-week"></label>
      ${select('status', filters.status, [['open', t('fstatus.open')], ['closed', t('fstatus.closed')]], 'filter-status')}
      <button class="primary" data-testid="filter-apply">${esc(t('common.show'))}</button>
      <span class="muted" data-testid="findings-total" data-value="${page.total}">${esc(t('common.count', { n: page.total }))}</span>
    </form>
    <div class="panel">${table([
      { label: t('firm.name'), cell: (f) => `<a href="#/firm/${f.firm_id}${f.last_week ? `?week=${isoWeek(f.last_week)}` : ''}">${esc(f.firm)}</a>` },
      { label: t('common.town'), cell: (f) => esc(f.town) },
      { label: t('findings.rule'), cell: (f) => `<span data-rule="${esc(f.rule)}">${esc(named('rule', f.rule))}</span>` },
      { label: t('findings.severity'), cell: (f) => badge(`sev-${f.severity}`, t(`severity.${f.severity}`)) },
      { label: t('findings.status'), cell: (f) => esc(t(`fstatus.${f.status}`)) },
      { label: t('findings.since'), cell: (f) => `${esc(f.first_week)} – ${esc(f.last_week)}` },
      { label: t('findings.weeks'), num: true, cell: (f) => f.weeks },
      { label: t('findings.text'), cell: (f) => esc(lang() === 'zh' ? f.text : f.text_en) },
    ], page.items, { testid: 'findings-table' })}
    <div class="pager">
      <button type="button" id="prev"${offset <= 0 ? ' disabled' : ''}>${esc(t('common.prev'))}</button>
      <span>${offset + 1}–${Math.min(offset + PAGE, page.total)} / ${page.total}</span>
      <button type="button" id="next"${offset + PAGE >= page.total ? ' disabled' : ''}>${esc(t('common.next'))}</button>
    </div></div>`;
  const form = view.querySelector('#filters');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate('findings', Object.fromEntries(new FormData(form)));
  });
  view.querySelector('#prev').addEventListener('click', () => navigate('findings', { ...filters, offset: Math.max(0, offset - PAGE) }));
  view.querySelector('#next').addEventListener('click', () => navigate('findings', { ...filters, offset: offset + PAGE }));
}
