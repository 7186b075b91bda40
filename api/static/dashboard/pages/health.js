// Live ingest health from /metrics (Prometheus text) and /readyz, every few seconds. The
// derivation backlog and the interval worker come from /readyz's intervals check, whose
// figures only a keyed caller gets; without a key the backlog is the public gauges'.
import { get, getText, optional } from '../api.js';
import { t } from '../i18n/index.js';
import { num, esc } from '../format.js';
import { chart, testMode } from '../charts.js';
import { parse, total } from '../prom.js';
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

/** A number of seconds as "42 s", "3 min 5 s" or "2 h 10 min", in the page's language. */
function age(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t('health.age_s', { s: num(s) });
  if (s < 3600) return t('health.age_m', { m: num(Math.floor(s / 60)), s: num(s % 60) });
  return t('health.age_h', { h: num(Math.floor(s / 3600)), m: num(Math.floor((s % 3600) / 60)) });
}

/** The backlog: /readyz's figures (keyed callers), else the gauges /metrics exports. */
function backlog(ready, samples) {
  const check = ready.checks.intervals || {};
  if (typeof check.ranges === 'number') {
    return { ranges: check.ranges, capped: check.ranges_capped, oldest: check.oldest_age_seconds };
  }
  const ranges = total(samples, 'meterhub_intervals_dirty_ranges');
  if (ranges === null) return null;
  return { ranges, capped: false, oldest: total(samples, 'meterhub_intervals_dirty_oldest_age_seconds') ?? 0 };
}

const WORKER_BADGE = { running: 'good', restarting: 'warn', dead: 'bad', stopped: 'warn', elsewhere: 'c-none' };

function dirtyCard(pending, derived) {
  const rate = derived === null ? '' : ` · ${esc(t('health.derived', { n: num(derived, 1) }))}`;
  if (pending === null) {
    return [t('health.dirty'), `<span class="muted">${esc(t('health.not_reported'))}</span>`, esc(t('health.dirty_sub')), 'dirty', ''];
  }
  const sub = pending.ranges ? esc(t('health.dirty_oldest', { age: age(pending.oldest) })) : esc(t('health.dirty_none'));
  const shown = `${pending.capped ? '≥ ' : ''}${num(pending.ranges)}`;
  return [t('health.dirty'), shown, sub + rate, 'dirty', `data-value="${pending.ranges}" data-oldest="${pending.oldest}"`];
}

function workerCard(worker) {
  const words = t(`health.worker_${worker.state}`);
  let sub = '';
  if (worker.state === 'running') {
    sub = t('health.worker_up', { age: age(worker.uptime_seconds ?? 0) });
    sub += ' · ' + (worker.last_pass_age_seconds === null
      ? t('health.worker_no_pass') : t('health.worker_pass', { age: age(worker.last_pass_age_seconds) }));
  } else if (worker.state === 'elsewhere') {
    sub = t('health.worker_derive');
  } else if (worker.last_error) {
    sub = t('health.worker_error', { error: worker.last_error });
  }
  if (worker.restarts) sub += ` · ${t('health.worker_restarts', { n: num(worker.restarts) })}`;
  return [t('health.worker'), badge(WORKER_BADGE[worker.state] || 'c-none', words), esc(sub), 'worker', `data-state="${esc(worker.state)}"`];
}

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
    const worker = (ready.checks.intervals || {}).worker;
    const cards = [
      [t('health.readings_rate'), accepted === null ? `<span class="muted">${esc(t('health.measuring'))}</span>` : num(accepted, 1), all === null ? '' : t('health.all_outcomes', { n: num(all, 1) }), 'readings-rate'],
      [t('health.queue'), value(total(now.samples, 'meterhub_ingest_queue_readings')), t('health.readings'), 'queue'],
      [t('health.spool'), value(total(now.samples, 'meterhub_spool_bytes')), t('health.spool_sub', {
        age: num(total(now.samples, 'meterhub_spool_oldest_age_seconds') ?? 0),
        pending: num(total(now.samples, 'meterhub_spool_replay_pending_segments') ?? 0),
        aside: num(total(now.samples, 'meterhub_spool_set_aside_segments') ?? 0) }), 'spool'],
      dirtyCard(backlog(ready, now.samples), derived),
      ...(worker ? [workerCard(worker)] : []),
      [t('health.offline_terminals'), offline ? num(offline.offline) : value(total(now.samples, 'meterhub_terminals_offline')),
        offline ? t('health.of_total', { n: num(offline.total) }) : '', 'offline'],
      [t('health.database'), ready.checks.database && ready.checks.database.ok ? badge('good', t('health.up')) : badge('bad', t('health.down')),
        t('health.mqtt', { n: value(total(now.samples, 'meterhub_mqtt_connected_clients')) }), 'database'],
    ];
    view.querySelector('#health-cards').innerHTML = cards
      .map(([label, v, sub, id, data = '']) => `<div class="card" data-testid="health-${id}"><div class="label">${esc(label)}</div><div class="value" ${data}>${v}</div><div class="sub">${sub}</div></div>`)
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
