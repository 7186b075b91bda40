// Campaign progress against the plan's targets, from GET /v1/campaign when the API has it.
// The page draws what the endpoint answers and never makes figures up: a 404 says the
// endpoint is not there yet.
import { get, ApiError } from '../api.js';
import { t } from '../i18n/index.js';
import { num, share, esc } from '../format.js';
import { table, unavailable } from '../ui.js';

const isObject = (v) => v && typeof v === 'object' && !Array.isArray(v);
const scalar = (v) => v === null || ['string', 'number', 'boolean'].includes(typeof v);

function cell(v) {
  if (typeof v === 'number') return num(v, Number.isInteger(v) ? 0 : 2);
  if (scalar(v)) return esc(v ?? '—');
  return `<code>${esc(JSON.stringify(v))}</code>`;
}

function progressOf(row) {
  const target = row.target ?? row.target_value;
  const done = row.progress ?? row.measured ?? row.actual ?? row.value ?? row.achieved;
  if (typeof row.share === 'number') return row.share;
  if (typeof row.progress_ratio === 'number') return row.progress_ratio;
  if (typeof target === 'number' && typeof done === 'number' && target) return done / target;
  return null;
}

function bar(ratio) {
  if (ratio === null) return '—';
  const width = Math.max(0, Math.min(100, ratio * 100));
  return `<div class="bar" role="img" aria-label="${share(ratio)}"><span style="width:${width}%"></span></div> ${share(ratio)}`;
}

function rowsTable(rows, testid) {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const columns = keys.map((k) => ({ label: t(`campaign.field.${k}`) === `campaign.field.${k}` ? k : t(`campaign.field.${k}`), cell: (r) => cell(r[k]), num: rows.every((r) => typeof r[k] === 'number' || r[k] == null) }));
  if (rows.some((r) => progressOf(r) !== null)) columns.push({ label: t('campaign.progress'), cell: (r) => bar(progressOf(r)) });
  return table(columns, rows, { testid });
}

function section(name, value, depth = 0) {
  if (Array.isArray(value) && value.every(isObject)) {
    return `<div class="panel"><h2>${esc(name)}</h2>${rowsTable(value, `campaign-${name}`)}</div>`;
  }
  if (isObject(value)) {
    const flat = Object.entries(value).filter(([, v]) => scalar(v));
    const nested = Object.entries(value).filter(([, v]) => !scalar(v));
    const facts = flat.length ? `<dl class="facts">${flat.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${cell(v)}</dd>`).join('')}</dl>` : '';
    if (depth > 2) return `<div class="panel"><h2>${esc(name)}</h2>${facts}<code>${esc(JSON.stringify(Object.fromEntries(nested)))}</code></div>`;
    return `<div class="panel"><h2>${esc(name)}</h2>${facts}${progressOf(value) !== null ? bar(progressOf(value)) : ''}</div>${nested.map(([k, v]) => section(`${name} · ${k}`, v, depth + 1)).join('')}`;
  }
  return `<div class="panel"><h2>${esc(name)}</h2>${cell(value)}</div>`;
}

export async function render(view) {
  let data;
  try {
    data = await get('/v1/campaign');
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      view.innerHTML = `<h1>${esc(t('campaign.title'))}</h1>${unavailable(t('campaign.not_yet'), 'campaign-unavailable')}`;
      return;
    }
    if (err instanceof ApiError && err.status === 403) {
      view.innerHTML = `<h1>${esc(t('campaign.title'))}</h1>${unavailable(t('common.not_allowed'))}`;
      return;
    }
    throw err;
  }
  const top = isObject(data) ? Object.entries(data) : [['campaign', data]];
  const facts = top.filter(([, v]) => scalar(v));
  view.innerHTML = `<h1>${esc(t('campaign.title'))}</h1>
    ${facts.length ? `<div class="panel"><dl class="facts">${facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${cell(v)}</dd>`).join('')}</dl></div>` : ''}
    ${top.filter(([, v]) => !scalar(v)).map(([k, v]) => section(k, v)).join('')}`;
}
