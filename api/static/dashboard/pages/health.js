// Live ingest health from /metrics (Prometheus text) and /readyz, every few seconds.
import { get, getText, optional } from '../api.js';
import { t } from '../i18n/index.js';
import { num, esc } from '../format.js';
import { chart, testMode } from '../charts.js';
import { parse, total, names } from '../prom.js';
import { table, badge } from '../ui.js';

const EVERY_MS = 5000;

function rate(now, before, name, where) {
  if (!before) return null;
  const a = total(now.samples, name, where);
  const b = total(before.samples, name, where);
  if (a === null || b === null) return null;
  const seconds = (now.at - before.at) / 1000;
  return seconds > 0 ? Math.max(0, (a - b) / seconds) : null;
}

const value = (v, digits = 0) => (v === null ? `<span class="muted">${esc(t('health.not_reported'))}</span>` : num(v, digits));

export async function render(view, { caps }) {
  view.innerHTML = `<h1>${esc(t('health.title'))}</h1>
    <div id="health-cards" class="cards"></div>
    <div class="grid2"><div class="panel"><h2>${esc(t('health.rate_chart'))}</h2><div class="chart" id="rate-chart"></div></div>
      <div class="panel"><h2>${esc(t('health.ready'))}</h2><div id="ready"></div></div></div>
    <div class="panel"><h2>${esc(t('health.offline'))}</h2><div id="offline"></div></div>
    <p class="muted">${esc(t('health.every', { s: EVERY_MS / 1000 }))}</p>`;
  let before = null;
  const history = [];
  const plot = chart(view.querySelector('#rate-chart'), {
    tooltip: { trigger: 'axis' },
    xAxis: { type: 'time' },
    yAxis: { type: 'value', name: t('health.per_second') },
    series: [{ name: t('health.readings_rate'), type: 'line', showSymbol: false, data: [] }],
  });
  async function tick() {
    const [text, ready, offline] = await Promise.all([
      getText('/metrics'),
      get('/readyz'),
      caps.terminals ? optional(get('/v1/terminals', { online: false, limit: 50 })) : Promise.resolve(null),
    ]);
    const now = { at: Date.now(), samples: parse(text) };
    const accepted = rate(now, before, 'meterhub_ingest_readings_total', { outcome: 'accepted' });
    const all = rate(now, before, 'meterhub_ingest_readings_total');
    const derived = rate(now, before, 'meterhub_intervals_derived_total');
    const present = names(now.samples);
    const dirtyName = [...present].find((n) => n.includes('dirty'));
    const cards = [
      [t('health.readings_rate'), accepted === null ? `<span class="muted">${esc(t('health.measuring'))}</span>` : num(accepted, 1), all === null ? '' : t('health.all_outcomes', { n: num(all, 1) }), 'readings-rate'],
      [t('health.queue'), value(total(now.samples, 'meterhub_ingest_queue_readings')), t('health.readings'), 'queue'],
      [t('health.spool'), value(total(now.samples, 'meterhub_spool_bytes')), t('health.spool_sub', {
        age: num(total(now.samples, 'meterhub_spool_oldest_age_seconds') ?? 0),
        pending: num(total(now.samples, 'meterhub_spool_replay_pending_segments') ?? 0),
        aside: num(total(now.samples, 'meterhub_spool_set_aside_segments') ?? 0) }), 'spool'],
      [t('health.dirty'), dirtyName ? num(total(now.samples, dirtyName)) : `<span class="muted">${esc(t('health.not_reported'))}</span>`,
        derived === null ? t('health.dirty_sub') : t('health.derived', { n: num(derived, 1) }), 'dirty'],
      [t('health.offline_terminals'), offline ? num(offline.offline) : value(total(now.samples, 'meterhub_terminals_offline')),
        offline ? t('health.of_total', { n: num(offline.total) }) : '', 'offline'],
      [t('health.database'), total(now.samples, 'meterhub_ingest_database_up') === 1 ? badge('good', t('health.up')) : badge('bad', t('health.down')),
        t('health.mqtt', { n: value(total(now.samples, 'meterhub_mqtt_connected_clients')) }), 'database'],
    ];
    view.querySelector('#health-cards').innerHTML = cards
      .map(([label, v, sub, id]) => `<div class="card" data-testid="health-${id}"><div class="label">${esc(label)}</div><div class="value">${v}</div><div class="sub">${sub}</div></div>`)
      .join('');
    view.querySelector('#ready').innerHTML = `<p>${ready.status === 'ok' ? badge('good', t('health.ready_ok')) : badge('bad', t('health.ready_bad'))}</p>${table([
      { label: t('health.check'), cell: ([name]) => esc(name) },
      { label: t('health.state'), cell: ([, c]) => (c.ok ? badge('good', t('health.ok')) : badge('bad', t('health.failed'))) },
      { label: t('health.detail'), cell: ([, c]) => esc(c.detail ?? '') },
    ], Object.entries(ready.checks), { testid: 'ready-checks' })}`;
    view.querySelector('#offline').innerHTML = offline
      ? table([
        { label: t('health.meter'), cell: (m) => esc(m.code ?? m.meter_id ?? m.id) },
        { label: t('health.firm'), cell: (m) => esc(m.firm ?? m.firm_name ?? m.firm_id ?? '') },
        { label: t('health.last_reading'), cell: (m) => esc(m.last_reading_at ?? m.last_success_at ?? '—') },
        { label: t('health.last_error'), cell: (m) => esc(m.last_error ?? '') },
      ], offline.items, { testid: 'offline-list', empty: t('health.none_offline') })
      : `<p class="muted">${esc(t('common.not_allowed'))}</p>`;
    if (accepted !== null) {
      history.push([now.at, accepted]);
      if (history.length > 120) history.shift();
      plot.setOption({ series: [{ data: history }] });
    }
    before = now;
  }
  await tick();
  const timer = setInterval(() => tick().catch(() => {}), testMode() ? 1000 : EVERY_MS);
  return () => clearInterval(timer);
}
