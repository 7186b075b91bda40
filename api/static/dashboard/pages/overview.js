// The city at a glance: 12 months of consumption with year on year, by town and by industry,
// terminals online, this week's production state and findings by town.
import { get, optional } from '../api.js';
import { t, named } from '../i18n/index.js';
import { num, pct, share, esc, mondayOf, lastWholeWeek, firstOfMonth, isoWeek } from '../format.js';
import { chart } from '../charts.js';
import { table, badge } from '../ui.js';

const SEVERITIES = ['high', 'medium', 'low', 'info'];

function groups(series) {
  const by = new Map();
  for (const b of series.buckets) {
    const g = by.get(b.group) || { group: b.group, energy: 0, compare: 0, hasCompare: false };
    g.energy += b.energy || 0;
    if (b.compare_energy != null) {
      g.compare += b.compare_energy;
      g.hasCompare = true;
    }
    by.set(b.group, g);
  }
  return [...by.values()]
    .map((g) => ({ ...g, ratio: g.hasCompare && g.compare ? g.energy / g.compare - 1 : null }))
    .sort((a, b) => b.energy - a.energy);
}

export async function render(view, { params, navigate }) {
  const week = params.week || lastWholeWeek();
  const monday = mondayOf(week);
  const end = firstOfMonth(monday, 1);
  const start = firstOfMonth(end, -12);
  const range = { start, end, granularity: 'month', compare: 'yoy' };
  const [city, towns, industries, terminals, found, production] = await Promise.all([
    get('/v1/trends/series', { scope: 'city', ...range }),
    get('/v1/trends/series', { scope: 'city', ...range, breakdown: 'town' }),
    get('/v1/trends/series', { scope: 'city', ...range, breakdown: 'industry' }),
    optional(get('/v1/terminals', { limit: 1 })),
    get('/v1/findings', { week: monday, limit: 1000 }),
    optional(get('/v1/trends/production-state', { week, limit: 1 }), [403, 404, 422]),
  ]);
  const byTown = new Map();
  for (const f of found.items) {
    const row = byTown.get(f.town) || { town: f.town, high: 0, medium: 0, low: 0, info: 0, total: 0 };
    row[f.severity] += 1;
    row.total += 1;
    byTown.set(f.town, row);
  }
  const findingTowns = [...byTown.values()].sort((a, b) => b.total - a.total);
  const unit = city.unit;
  view.innerHTML = `
    <h1>${esc(t('overview.title'))}${city.town ? ` · ${esc(city.town)}` : ''}</h1>
    <form class="filters no-print" id="week-form">
      <label>${esc(t('common.week'))}<input type="week" name="week" value="${esc(week)}" data-testid="week"></label>
      <button>${esc(t('common.show'))}</button>
      <span class="muted">${esc(t('overview.range', { start, end }))}</span>
    </form>
    <div class="cards">
      <div class="card"><div class="label">${esc(t('overview.energy_12m'))}</div>
        <div class="value" data-testid="kpi-energy" data-value="${city.total.energy ?? ''}">${num(city.total.energy)} <small>${esc(unit)}</small></div>
        <div class="sub">${esc(t('overview.yoy'))} <span data-testid="kpi-yoy">${pct(city.total.change_ratio)}</span></div></div>
      <div class="card"><div class="label">${esc(t('overview.terminals'))}</div>
        ${terminals ? `<div class="value" data-testid="kpi-online" data-value="${terminals.online}">${num(terminals.online)} / ${num(terminals.total)}</div>
        <div class="sub">${badge('bad', t('terminal.offline'))} ${num(terminals.offline)} · ${badge('c-none', t('terminal.unknown'))} ${num(terminals.unknown)}</div>`
        : `<div class="sub muted">${esc(t('common.not_allowed'))}</div>`}</div>
      <div class="card"><div class="label">${esc(t('overview.findings_week', { week }))}</div>
        <div class="value" data-testid="kpi-findings" data-value="${found.total}">${num(found.total)}</div>
        <div class="sub">${SEVERITIES.map((s) => `${badge(`sev-${s}`, t(`severity.${s}`))} ${num(found.items.filter((f) => f.severity === s).length)}`).join(' ')}</div></div>
      <div class="card"><div class="label">${esc(t('overview.production', { week: production ? production.week : week }))}</div>
        ${production ? `<div class="value">${share(production.shares.running)}</div>
        <div class="sub">${['running', 'reduced', 'stopped', 'unknown'].map((s) => `${esc(t(`state.${s}`))} ${num(production.counts[s] ?? 0)}`).join(' · ')}</div>`
        : `<div class="sub muted">${esc(t('common.no_data'))}</div>`}</div>
    </div>
    <div class="panel"><h2>${esc(t('overview.trend', { unit }))}</h2><div class="chart" id="trend" role="img" aria-label="${esc(t('overview.trend', { unit }))}"></div>
      <details><summary>${esc(t('common.table'))}</summary>${table([
        { label: t('common.month'), cell: (b) => esc(b.bucket.slice(0, 7)) },
        { label: `${t('common.energy')} (${unit})`, num: true, cell: (b) => num(b.energy) },
        { label: `${t('overview.last_year')} (${unit})`, num: true, cell: (b) => num(b.compare_energy) },
        { label: t('overview.yoy'), num: true, cell: (b) => pct(b.change_ratio) },
      ], city.buckets, { testid: 'trend-table' })}</details></div>
    <div class="grid2">
      <div class="panel"><h2>${esc(t('overview.by_town', { unit }))}</h2><div class="chart tall" id="towns"></div>
        ${table([
          { label: t('common.town'), cell: (g) => `<a href="#/findings?town=${encodeURIComponent(g.group)}&week=${esc(week)}">${esc(g.group)}</a>` },
          { label: unit, num: true, cell: (g) => num(g.energy) },
          { label: t('overview.yoy'), num: true, cell: (g) => pct(g.ratio) },
        ], groups(towns), { testid: 'town-table' })}</div>
      <div class="panel"><h2>${esc(t('overview.by_industry', { unit }))}</h2><div class="chart tall" id="industries"></div>
        ${table([
          { label: t('common.industry'), cell: (g) => `${esc(g.group)} ${esc(named('industry', g.group))}` },
          { label: unit, num: true, cell: (g) => num(g.energy) },
          { label: t('overview.yoy'), num: true, cell: (g) => pct(g.ratio) },
        ], groups(industries), { testid: 'industry-table' })}</div>
    </div>
    <div class="panel"><h2>${esc(t('overview.findings_by_town', { week }))}</h2><div class="chart" id="findings"></div>
      ${table([
        { label: t('common.town'), cell: (r) => `<a href="#/findings?town=${encodeURIComponent(r.town)}&week=${esc(week)}">${esc(r.town)}</a>` },
        ...SEVERITIES.map((s) => ({ label: t(`severity.${s}`), num: true, cell: (r) => num(r[s]) })),
        { label: t('common.total'), num: true, cell: (r) => `<strong>${num(r.total)}</strong>` },
      ], findingTowns, { testid: 'findings-by-town', empty: t('overview.no_findings') })}</div>`;

  view.querySelector('#week-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = new FormData(e.target).get('week');
    navigate('overview', { week: value || isoWeek(monday) });
  });
  const months = city.buckets.map((b) => b.bucket.slice(0, 7));
  chart(view.querySelector('#trend'), {
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    xAxis: { type: 'category', data: months },
    yAxis: [{ type: 'value', name: unit }, { type: 'value', name: t('overview.yoy'), axisLabel: { formatter: (v) => `${Math.round(v * 100)}%` } }],
    series: [
      { name: t('overview.this_year'), type: 'bar', data: city.buckets.map((b) => b.energy) },
      { name: t('overview.last_year'), type: 'bar', data: city.buckets.map((b) => b.compare_energy) },
      { name: t('overview.yoy'), type: 'line', yAxisIndex: 1, data: city.buckets.map((b) => b.change_ratio), symbol: 'diamond' },
    ],
  });
  const bars = (el, rows, label) => chart(el, {
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    legend: { top: 0 },
    grid: { left: 10, right: 30, top: 30, bottom: 10, containLabel: true },
    xAxis: { type: 'value', name: unit },
    yAxis: { type: 'category', inverse: true, data: rows.map(label) },
    series: [
      { name: t('overview.this_year'), type: 'bar', barMaxWidth: 18, data: rows.map((g) => g.energy) },
      { name: t('overview.last_year'), type: 'bar', barMaxWidth: 18, data: rows.map((g) => (g.hasCompare ? g.compare : null)) },
    ],
  });
  bars(view.querySelector('#towns'), groups(towns), (g) => g.group);
  bars(view.querySelector('#industries'), groups(industries).slice(0, 12), (g) => `${g.group} ${named('industry', g.group)}`);
  chart(view.querySelector('#findings'), {
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    legend: { top: 0 },
    color: ['#b42318', '#E69F00', '#0072B2', '#999999'],
    xAxis: { type: 'category', data: findingTowns.map((r) => r.town) },
    yAxis: { type: 'value', minInterval: 1 },
    series: SEVERITIES.map((s) => ({ name: t(`severity.${s}`), type: 'bar', stack: 'all', barMaxWidth: 48, data: findingTowns.map((r) => r[s]) })),
  });
}
