// The weekly rectification notice (每周通报): summary by town, items with the lifecycle
// actions the key may take; `print=1` shows it as the printable document.
import { get, ApiError } from '../api.js';
import { t, lang, named } from '../i18n/index.js';
import { num, pct, share, esc, lastWholeWeek, isoWeek } from '../format.js';
import { table, badge, unavailable } from '../ui.js';
import { fill } from './actions.js';
import { noticeExport, openExport } from './exports.js';

const SUMMARY = ['new', 'continuing', 'overdue', 'closed_this_week', 'closed_total'];

function summaryTable(rows) {
  return table([
    { label: t('common.town'), cell: (r) => esc(r.town) },
    ...SUMMARY.map((k) => ({ label: t(`notice.${k}`), num: true, cell: (r) => num(r.summary[k]) })),
    { label: t('notice.completion_rate'), num: true, cell: (r) => share(r.summary.completion_rate) },
  ], rows, { testid: 'notice-summary' });
}

function problem(i) {
  return lang() === 'zh' ? i.problem_zh : named('problem', i.problem);
}

function itemColumns({ actions }) {
  return [
    { label: t('firm.name'), cell: (i) => (actions ? `<a href="#/firm/${i.firm_id}">${esc(i.firm)}</a>` : esc(i.firm)) },
    { label: t('notice.problem'), cell: (i) => `${esc(problem(i))}${i.reasons.length ? `<br><small>${i.reasons.map((r) => esc(r.text)).join('；')}</small>` : ''}` },
    { label: t('notice.week_kwh'), num: true, cell: (i) => num(i.figures.week_kwh) },
    { label: t('overview.yoy'), num: true, cell: (i) => pct(i.figures.year_on_year) },
    { label: t('notice.action'), cell: (i) => esc(i.action) },
    { label: t('notice.deadline'), cell: (i) => esc(i.deadline) },
    { label: t('notice.weeks_running'), num: true, cell: (i) => i.weeks_running },
    { label: t('notice.status'), cell: (i) => `<span data-testid="status-${i.case_id}">${esc(lang() === 'zh' ? i.status_zh : t(`status.${i.status}`))}</span>` },
    { label: t('notice.colour'), cell: (i) => badge(`c-${i.colour}`, lang() === 'zh' ? i.colour_zh : t(`colour.${i.colour}`)) },
    ...(actions ? [{ label: t('case.actions'), cell: (i) => `<div data-actions="${i.case_id}"><span class="muted">…</span></div>` }] : []),
  ];
}

async function recent(view, week) {
  const list = await get('/v1/notices', { limit: 12 });
  view.innerHTML = `<h1>${esc(t('notice.title'))}</h1>
    ${unavailable(t('notice.none_for_week', { week }), 'notice-missing')}
    <div class="panel"><h2>${esc(t('notice.recent'))}</h2>${table([
      { label: t('notice.number'), cell: (n) => `<a href="#/notice?week=${esc(isoWeek(n.week))}">${esc(n.number)}</a>` },
      { label: t('common.week'), cell: (n) => esc(n.week) },
      { label: t('notice.revision'), num: true, cell: (n) => n.revision },
    ], list, { testid: 'notice-list' })}</div>`;
}

export async function render(view, ctx) {
  const { params, navigate } = ctx;
  let week = params.week;
  if (!week) {
    const latest = await get('/v1/notices', { limit: 1 });
    week = latest.length ? isoWeek(latest[0].week) : lastWholeWeek();
  }
  let notice;
  try {
    notice = await get(`/v1/notices/${week}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return recent(view, week);
    throw err;
  }
  const h = notice.content.header;
  const towns = notice.content.towns;
  const withItems = towns.filter((x) => x.items.length);
  const printing = params.print === '1';
  const [html, xlsx] = await Promise.all([noticeExport('html'), noticeExport('xlsx')]);
  const exportsBar = `${html ? `<button type="button" id="export-html" data-testid="export-html">${esc(t('notice.export_html'))}</button>`
    : `<span class="muted" data-testid="export-html-missing">${esc(t('notice.export_missing', { kind: 'HTML' }))}</span>`}
    ${xlsx ? `<button type="button" id="export-xlsx">${esc(t('notice.export_xlsx'))}</button>` : ''}`;
  if (printing) {
    view.innerHTML = `<div class="print-tools no-print">
        <a href="#/notice?week=${esc(week)}">${esc(t('notice.back'))}</a>
        <button type="button" class="primary" id="print">${esc(t('notice.print'))}</button>${exportsBar}</div>
      <article class="doc" data-testid="notice-doc">
        <h1 class="doc-title">${esc(h.title)}</h1>
        <p class="doc-number" data-testid="notice-number">${esc(h.number)}</p>
        <p>${esc(t('notice.issuer'))}：${esc(h.issuing_unit)}　${esc(t('notice.period'))}：${esc(h.period.start)} — ${esc(h.period.end)}　${esc(t('notice.completeness'))}：${share(h.completeness)}</p>
        <h2>${esc(t('notice.summary'))}</h2>${summaryTable(towns.length > 1 ? [{ town: t('notice.city'), summary: notice.content.summary }, ...towns] : towns)}
        ${withItems.map((x) => `<section class="town"><h2>${esc(x.full_name)}（${esc(x.notice_unit)}）</h2>
          ${table(itemColumns({ actions: false }), x.items)}</section>`).join('')}
      </article>`;
    view.querySelector('#print').addEventListener('click', () => window.print());
  } else {
    view.innerHTML = `<h1>${esc(h.title)} · <span data-testid="notice-number">${esc(h.number)}</span></h1>
      <div class="filters no-print">
        <form id="week-form" class="filters"><label>${esc(t('common.week'))}<input type="week" name="week" value="${esc(week)}"></label><button>${esc(t('common.show'))}</button></form>
        <a href="#/notice?week=${esc(week)}&print=1" data-testid="print-view">${esc(t('notice.print_view'))}</a>${exportsBar}
      </div>
      <p class="muted">${esc(t('notice.issuer'))}: ${esc(h.issuing_unit)} · ${esc(t('notice.period'))}: ${esc(h.period.start)} – ${esc(h.period.end)} · ${esc(t('notice.revision'))} ${notice.revision} · ${esc(t('notice.completeness'))} ${share(h.completeness)}</p>
      <div class="panel"><h2>${esc(t('notice.summary'))}</h2>${summaryTable(towns)}</div>
      <p role="status" data-testid="action-status" class="muted"></p>
      ${withItems.map((x) => `<div class="panel"><h2>${esc(x.full_name)} · ${esc(x.notice_unit)}</h2>${table(itemColumns({ actions: true }), x.items, { testid: `items-${x.town}` })}</div>`).join('')
      || `<p class="muted">${esc(t('notice.no_items'))}</p>`}`;
    view.querySelector('#week-form').addEventListener('submit', (e) => {
      e.preventDefault();
      navigate('notice', { week: new FormData(e.target).get('week') || week });
    });
    await fill(view, () => window.dispatchEvent(new HashChangeEvent('hashchange')));
  }
  const bind = (id, found, kind) => {
    const el = view.querySelector(id);
    if (el) el.addEventListener('click', () => openExport(found, week, kind).catch((err) => alert(err.message)));
  };
  bind('#export-html', html, 'html');
  bind('#export-xlsx', xlsx, 'xlsx');
}
