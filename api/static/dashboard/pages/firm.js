// One firm: load curve, energy accounting, intensity against its industry, baseline fit,
// evaluation classes, carbon grade, open findings, notice items, data-quality events.
// Without an id: a search over the registry.
import { get, optional } from '../api.js';
import { t, lang, named } from '../i18n/index.js';
import { num, pct, esc, mondayOf, lastWholeWeek, addDays } from '../format.js';
import { chart } from '../charts.js';
import { table, badge, unavailable } from '../ui.js';

async function search(view, { params, navigate }) {
  const q = params.q || '';
  const page = await get('/v1/firms', { q, limit: 50, sort: 'name' });
  view.innerHTML = `<h1>${esc(t('firm.search_title'))}</h1>
    <form class="filters" id="search"><label>${esc(t('firm.search'))}<input name="q" value="${esc(q)}" data-testid="firm-q"></label>
    <button>${esc(t('common.show'))}</button><span class="muted">${esc(t('common.count', { n: page.total }))}</span></form>
    <div class="panel">${table([
      { label: t('firm.name'), cell: (f) => `<a href="#/firm/${f.id}">${esc(f.name)}</a>` },
      { label: t('firm.credit_code'), cell: (f) => esc(f.credit_code) },
      { label: t('common.town'), cell: (f) => esc(f.town) },
      { label: t('common.industry'), cell: (f) => esc(f.industry) },
      { label: t('firm.land_mu'), num: true, cell: (f) => num(f.land_mu, 2) },
    ], page.items, { testid: 'firm-list' })}</div>`;
  view.querySelector('#search').addEventListener('submit', (e) => {
    e.preventDefault();
    navigate('firm', { q: new FormData(e.target).get('q') });
  });
}

const PERIOD_COLUMNS = (unit) => [
  { label: t('firm.period'), cell: (p) => `${esc(t(`period.${p.period}`))}<br><small class="muted">${esc(p.start)} – ${esc(p.end)}</small>` },
  { label: `${t('utility.electricity')} (${unit})`, num: true, cell: (p) => num(p.electricity_kwh) },
  { label: `${t('utility.gas')} (m³)`, num: true, cell: (p) => num(p.gas_m3) },
  { label: `${t('utility.water')} (t)`, num: true, cell: (p) => num(p.water_t) },
  { label: t('firm.tce'), num: true, cell: (p) => num(p.tce_calorific, 2) },
  { label: t('firm.co2'), num: true, cell: (p) => num(p.co2_t, 2) },
  { label: t('firm.output'), num: true, cell: (p) => `${num(p.output_value == null ? null : p.output_value / 1e4)}<br><small class="muted">${esc(t(`basis.${p.output_basis}`))}</small>` },
  { label: t('firm.kwh_per_10k'), num: true, cell: (p) => num(p.kwh_per_10k_output, 1) },
];

export async function render(view, ctx) {
  if (!ctx.arg) return search(view, ctx);
  const { params, navigate } = ctx;
  const id = ctx.arg;
  const week = params.week || lastWholeWeek();
  const monday = mondayOf(week);
  const granularity = params.granularity === '15min' ? '15min' : 'hour';
  const [p, load] = await Promise.all([
    get(`/v1/firms/${encodeURIComponent(id)}/profile`, { week: monday }),
    get('/v1/trends/series', { scope: 'firm', id, start: monday, end: addDays(monday, 7), granularity }),
  ]);
  const items = await optional(get(`/v1/notices/${week}/items`, { town: p.firm.town }), [403, 404], null);
  const mine = items ? items.filter((i) => i.firm_id === p.firm.id) : null;
  const f = p.firm;
  const quality = Object.entries(p.data_quality_90_days || {});
  const evals = [...p.evaluations].sort((a, b) => a.year - b.year);
  view.innerHTML = `
    <h1 data-testid="firm-name">${esc(f.name)}</h1>
    <form class="filters no-print" id="firm-form">
      <label>${esc(t('common.week'))}<input type="week" name="week" value="${esc(week)}"></label>
      <label>${esc(t('firm.granularity'))}<select name="granularity" data-testid="granularity">
        <option value="hour"${granularity === 'hour' ? ' selected' : ''}>${esc(t('granularity.hour'))}</option>
        <option value="15min"${granularity === '15min' ? ' selected' : ''}>${esc(t('granularity.15min'))}</option></select></label>
      <button>${esc(t('common.show'))}</button>
    </form>
    <div class="panel"><dl class="facts">
      <dt>${esc(t('firm.credit_code'))}</dt><dd>${esc(f.credit_code)}</dd>
      <dt>${esc(t('common.town'))}</dt><dd>${esc(f.town)}</dd>
      <dt>${esc(t('common.industry'))}</dt><dd>${esc(f.industry)} ${esc(named('industry', String(f.industry).slice(0, 3)))}</dd>
      <dt>${esc(t('firm.land_mu'))}</dt><dd>${num(f.land_mu, 2)}</dd>
      <dt>${esc(t('firm.tags'))}</dt><dd>${esc((f.tags || []).join('、') || '—')}</dd>
    </dl></div>
    <div class="panel"><h2>${esc(t('firm.load', { week, unit: load.unit }))}</h2>
      <p class="muted">${esc(t('firm.load_total'))} <strong data-testid="load-total" data-value="${load.total.energy ?? ''}">${num(load.total.energy)} ${esc(load.unit)}</strong></p>
      <div class="chart" id="load"></div></div>
    <div class="panel"><h2>${esc(t('firm.energy'))}</h2>${table(PERIOD_COLUMNS(load.unit), p.energy, { testid: 'energy-table' })}</div>
    <div class="grid2">
      <div class="panel"><h2>${esc(t('firm.intensity'))}</h2>${p.intensity ? `
        <div class="chart" id="intensity"></div>
        <p data-testid="intensity-text">${esc(t('firm.intensity_text', {
          own: num(p.intensity.kwh_per_10k_output, 1), median: num(p.intensity.peer_median, 1),
          peers: p.intensity.peers, sector: p.intensity.sector, months: p.intensity.months }))}
          ${p.intensity.peer_median ? badge(p.intensity.kwh_per_10k_output > p.intensity.peer_median ? 'bad' : 'good',
            p.intensity.kwh_per_10k_output > p.intensity.peer_median ? t('firm.above_median') : t('firm.below_median')) : ''}</p>`
        : `<p class="muted">${esc(t('common.no_data'))}</p>`}</div>
      <div class="panel"><h2>${esc(t('firm.baseline'))}</h2>${p.baseline ? `<dl class="facts" data-testid="baseline">
        <dt>${esc(t('firm.baseline_model'))}</dt><dd>E = ${num(p.baseline.intercept_kwh)} + ${num(p.baseline.kwh_per_10k_output, 2)} × ${esc(t('firm.output_10k'))}</dd>
        <dt>R²</dt><dd>${num(p.baseline.r2, 3)}</dd><dt>CV(RMSE)</dt><dd>${pct(p.baseline.cv_rmse).replace('+', '')}</dd>
        <dt>NMBE</dt><dd>${pct(p.baseline.nmbe)}</dd><dt>p</dt><dd>${num(p.baseline.p_value, 4)}</dd>
        <dt>${esc(t('firm.months'))}</dt><dd>${p.baseline.months}</dd>
        <dt>${esc(t('firm.valid'))}</dt><dd>${p.baseline.valid ? badge('good', t('common.yes')) : badge('bad', t('common.no'))}</dd></dl>`
        : `<p class="muted">${esc(t('firm.no_baseline'))}</p>`}</div>
    </div>
    <div class="grid2">
      <div class="panel"><h2>${esc(t('firm.evaluations'))}</h2>${table([
        { label: t('common.year'), cell: (e) => esc(e.year) },
        { label: t('firm.source'), cell: (e) => esc(t(`source.${e.source}`)) },
        { label: t('firm.class'), cell: (e) => badge(e.class === 'D' ? 'bad' : e.class === 'A' ? 'good' : 'c-none', e.class) },
        { label: t('firm.score'), num: true, cell: (e) => num(e.score, 1) },
        { label: t('firm.rank'), num: true, cell: (e) => (e.rank ? `${e.rank} / ${e.cohort_size ?? '—'}` : '—') },
      ], evals, { testid: 'evaluations' })}</div>
      <div class="panel"><h2>${esc(t('firm.carbon'))}</h2>${p.carbon_grade ? `<dl class="facts" data-testid="carbon">
        <dt>${esc(t('common.year'))}</dt><dd>${p.carbon_grade.year}</dd>
        <dt>${esc(t('firm.grade'))}</dt><dd><strong>${p.carbon_grade.grade}</strong> · ${esc(p.carbon_grade.level)}</dd>
        <dt>CO₂ (t)</dt><dd>${num(p.carbon_grade.co2_t, 1)}</dd>
        <dt>L / ${esc(t('firm.sector_l'))}</dt><dd>${num(p.carbon_grade.l, 3)} / ${num(p.carbon_grade.sector_l, 3)} (K = ${num(p.carbon_grade.k, 2)})</dd></dl>`
        : `<p class="muted">${esc(t('common.no_data'))}</p>`}</div>
    </div>
    <div class="panel"><h2>${esc(t('firm.open_findings'))}</h2>${table([
      { label: t('findings.rule'), cell: (x) => esc(named('rule', x.rule)) },
      { label: t('findings.severity'), cell: (x) => badge(`sev-${x.severity}`, t(`severity.${x.severity}`)) },
      { label: t('findings.since'), cell: (x) => esc(x.first_week) },
      { label: t('findings.weeks'), num: true, cell: (x) => x.weeks },
      { label: t('findings.text'), cell: (x) => esc(lang() === 'zh' ? x.text : x.text_en) },
    ], p.open_findings, { testid: 'open-findings' })}</div>
    <div class="panel"><h2>${esc(t('firm.notice_items', { week }))}</h2>${mine === null ? unavailable(t('notice.none_for_week', { week }), 'firm-notice-none') : table([
      { label: t('notice.problem'), cell: (i) => esc(lang() === 'zh' ? i.problem_zh : named('problem', i.problem)) },
      { label: t('notice.status'), cell: (i) => esc(t(`status.${i.status}`)) },
      { label: t('notice.colour'), cell: (i) => badge(`c-${i.colour}`, t(`colour.${i.colour}`)) },
      { label: t('notice.deadline'), cell: (i) => esc(i.deadline) },
      { label: '', cell: (i) => `<a href="#/case/${i.case_id}">${esc(t('notice.open_case'))}</a>` },
    ], mine, { testid: 'firm-notice-items' })}</div>
    <div class="panel"><h2>${esc(t('firm.quality'))}</h2>${table([
      { label: t('firm.event_kind'), cell: ([k]) => esc(named('event', k)) },
      { label: t('common.count_label'), num: true, cell: ([, n]) => num(n) },
    ], quality, { testid: 'quality', empty: t('firm.no_events') })}</div>`;

  view.querySelector('#firm-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const data = new FormData(e.target);
    navigate('firm', { week: data.get('week') || week, granularity: data.get('granularity') }, id);
  });
  chart(view.querySelector('#load'), {
    tooltip: { trigger: 'axis' },
    xAxis: { type: 'time' },
    yAxis: { type: 'value', name: load.unit },
    dataZoom: [{ type: 'inside' }],
    series: [{ name: t('common.energy'), type: 'line', step: 'start', showSymbol: false, areaStyle: { opacity: 0.15 },
      data: load.buckets.map((b) => [b.bucket, b.energy]) }],
  });
  if (p.intensity) {
    chart(view.querySelector('#intensity'), {
      tooltip: {},
      xAxis: { type: 'category', data: [t('firm.this_firm'), t('firm.peer_median')] },
      yAxis: { type: 'value', name: t('firm.kwh_per_10k') },
      series: [{ type: 'bar', label: { show: true, position: 'top' },
        data: [p.intensity.kwh_per_10k_output, p.intensity.peer_median] }],
    });
  }
}
