// Numbers, shares and ISO weeks, in the page's language. Dates are calendar dates (no clock).
import { lang } from './i18n/index.js';

const locale = () => (lang() === 'zh' ? 'zh-CN' : 'en-GB');

export function num(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  return Number(value).toLocaleString(locale(), {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

export function pct(ratio, digits = 1) {
  if (ratio === null || ratio === undefined) return '—';
  const sign = ratio > 0 ? '+' : '';
  return `${sign}${(ratio * 100).toFixed(digits)}%`;
}

export function share(ratio, digits = 1) {
  if (ratio === null || ratio === undefined) return '—';
  return `${(ratio * 100).toFixed(digits)}%`;
}

export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Calendar dates as 'YYYY-MM-DD', computed in UTC so no time zone moves them.
const day = (s) => new Date(`${s}T00:00:00Z`);
const iso = (d) => d.toISOString().slice(0, 10);

export function addDays(s, n) {
  const d = day(s);
  d.setUTCDate(d.getUTCDate() + n);
  return iso(d);
}

export function today() {
  const now = new Date();
  const y = now.getFullYear(), m = String(now.getMonth() + 1).padStart(2, '0');
  return `${y}-${m}-${String(now.getDate()).padStart(2, '0')}`;
}

export function mondayOfDate(s) {
  const wd = (day(s).getUTCDay() + 6) % 7; // Monday 0
  return addDays(s, -wd);
}

/** 'YYYY-Www' of a date (ISO 8601 week numbering). */
export function isoWeek(s) {
  const thursday = addDays(mondayOfDate(s), 3);
  const year = Number(thursday.slice(0, 4));
  const first = mondayOfDate(addDays(`${year}-01-04`, 0));
  const n = Math.round((day(mondayOfDate(s)) - day(first)) / 604800000) + 1;
  return `${year}-W${String(n).padStart(2, '0')}`;
}

/** The Monday of an ISO week 'YYYY-Www', as 'YYYY-MM-DD'; null when malformed. */
export function mondayOf(week) {
  const m = /^(\d{4})-W(\d{2})$/.exec(week || '');
  if (!m) return null;
  return addDays(mondayOfDate(`${m[1]}-01-04`), (Number(m[2]) - 1) * 7);
}

/** The last whole week before today's. */
export function lastWholeWeek() {
  return isoWeek(addDays(mondayOfDate(today()), -7));
}

export function firstOfMonth(s, shift = 0) {
  const d = day(s);
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() + shift);
  return iso(d);
}
