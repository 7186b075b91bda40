// Strings come from one file per language; the choice (not the key) is kept in localStorage.
import zh from './zh.js';
import en from './en.js';

const TABLES = { zh, en };
const STORE = 'mhub.lang';
let current = localStorage.getItem(STORE) === 'en' ? 'en' : 'zh';

export function lang() {
  return current;
}

export function setLang(next) {
  current = next === 'en' ? 'en' : 'zh';
  localStorage.setItem(STORE, current);
  document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
}

/** The string `key` ("a.b") in the current language, `{name}` replaced from `vars`. */
export function t(key, vars = {}) {
  const pick = (table) => key.split('.').reduce((o, k) => (o == null ? o : o[k]), table);
  let s = pick(TABLES[current]);
  if (s == null) s = pick(TABLES.zh);
  if (s == null) return key;
  return String(s).replace(/\{(\w+)\}/g, (_, name) => (name in vars ? vars[name] : `{${name}}`));
}

/** A code's name in a table of names (rules, problems...), or the code itself. */
export function named(table, code) {
  const s = t(`${table}.${code}`);
  return s === `${table}.${code}` ? code : s;
}

document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
