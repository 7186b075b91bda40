// Boot: log in with a key, learn what it may see, route by hash (#/page/arg?query).
import { get, optional, ApiError } from './api.js';
import { getKey, setKey, clearKey } from './session.js';
import { t, lang, setLang } from './i18n/index.js';
import { esc, today, addDays } from './format.js';
import { disposeAll } from './charts.js';
import { failure } from './ui.js';
import * as overview from './pages/overview.js';
import * as firm from './pages/firm.js';
import * as findings from './pages/findings.js';
import * as campaign from './pages/campaign.js';
import * as notice from './pages/notice.js';
import * as noticeCase from './pages/case.js';
import * as health from './pages/health.js';

const PAGES = {
  overview: { module: overview, needs: 'reader', nav: true },
  firm: { module: firm, needs: 'reader', nav: true },
  findings: { module: findings, needs: 'reader', nav: true },
  notice: { module: notice, needs: 'reader', nav: true },
  campaign: { module: campaign, needs: 'reader', nav: true },
  case: { module: noticeCase, needs: 'reader', nav: false },
  health: { module: health, needs: null, nav: true },
};

let caps = null;
let stopPage = null;

/** What this key may see, from two cheap calls (nothing server-side is added for it). */
async function capabilities() {
  const people = await optional(get('/v1/towns'), [403], null);
  const day = today();
  const probe = await optional(
    get('/v1/trends/series', { scope: 'city', start: day, end: addDays(day, 1), granularity: 'day' }),
    [403],
    null,
  );
  const reader = probe !== null;
  const terminals = reader || (await optional(get('/v1/terminals', { limit: 1 }), [403], null)) !== null;
  return { people: people !== null, towns: people || [], reader, town: probe ? probe.town : null, terminals };
}

function parseHash() {
  const [path, qs] = (location.hash.replace(/^#\/?/, '') || 'overview').split('?');
  const [page, ...rest] = path.split('/');
  return { page: page || 'overview', arg: rest.join('/') || null, params: Object.fromEntries(new URLSearchParams(qs || '')) };
}

export function navigate(page, params = {}, arg = null) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v != null));
  const qs = q.toString();
  location.hash = `#/${page}${arg ? `/${arg}` : ''}${qs ? `?${qs}` : ''}`;
}

function allowed(page) {
  const spec = PAGES[page];
  return spec && (spec.needs === null || (spec.needs === 'reader' && caps && caps.reader));
}

function renderChrome(current) {
  document.title = t('app.title');
  document.querySelectorAll('[data-i18n]').forEach((el) => {
    el.textContent = t(el.dataset.i18n);
  });
  document.getElementById('lang').textContent = lang() === 'zh' ? 'English' : '中文';
  const logout = document.getElementById('logout');
  logout.hidden = !getKey();
  const nav = document.getElementById('nav');
  nav.innerHTML = caps
    ? Object.entries(PAGES)
        .filter(([name, spec]) => spec.nav && allowed(name))
        .map(([name]) => `<a href="#/${name}" data-testid="nav-${name}"${name === current ? ' aria-current="page"' : ''}>${esc(t(`nav.${name}`))}</a>`)
        .join('')
    : '';
  const who = document.getElementById('who');
  who.textContent = !caps ? '' : caps.town ? t('app.town_key', { town: caps.town }) : caps.reader ? t('app.city_key') : t('app.limited_key');
}

function renderLogin(view, message = '') {
  view.innerHTML = `<form class="login panel" id="login" autocomplete="off">
    <h1>${esc(t('login.title'))}</h1>
    <p class="muted">${esc(t('login.hint'))}</p>
    <label>${esc(t('login.key'))}<input type="password" id="key" name="key" required data-testid="login-key" autocomplete="off"></label>
    <p class="error" role="alert" data-testid="login-error">${esc(message)}</p>
    <button class="primary" data-testid="login-submit">${esc(t('login.submit'))}</button>
    <p class="muted"><a href="#/health">${esc(t('nav.health'))}</a> · <a href="/docs">${esc(t('login.docs'))}</a></p>
  </form>`;
  view.querySelector('#login').addEventListener('submit', async (e) => {
    e.preventDefault();
    setKey(view.querySelector('#key').value.trim());
    try {
      caps = await capabilities();
    } catch (err) {
      clearKey();
      caps = null;
      renderLogin(view, err instanceof ApiError && err.status === 401 ? t('login.bad_key') : err.message);
      return;
    }
    if (!caps.people && !caps.reader) {
      clearKey();
      caps = null;
      renderLogin(view, t('login.no_access'));
      return;
    }
    if (!caps.reader && parseHash().page !== 'health') navigate('health');
    else route();
  });
}

async function route() {
  if (stopPage) stopPage();
  stopPage = null;
  disposeAll();
  const view = document.getElementById('view');
  delete view.dataset.ready;
  const { page, arg, params } = parseHash();
  if (!getKey() && page !== 'health') {
    renderChrome(null);
    renderLogin(view);
    return;
  }
  if (getKey() && !caps) {
    try {
      caps = await capabilities();
    } catch (err) {
      clearKey();
      caps = null;
      renderChrome(null);
      renderLogin(view, err instanceof ApiError && err.status === 401 ? t('login.bad_key') : err.message);
      return;
    }
  }
  const target = PAGES[page] ? page : 'overview';
  renderChrome(target);
  if (!allowed(target)) {
    if (caps && !caps.reader && target !== 'health') {
      navigate('health');
      return;
    }
    view.innerHTML = `<p class="muted" data-testid="not-allowed">${esc(t('app.not_allowed'))}</p>`;
    return;
  }
  view.innerHTML = `<p class="muted" data-testid="loading">${esc(t('common.loading'))}</p>`;
  const started = performance.now();
  try {
    stopPage = (await PAGES[target].module.render(view, { arg, params, caps: caps || {}, navigate })) || null;
    view.dataset.ready = target;
    view.dataset.ms = String(Math.round(performance.now() - started));
  } catch (err) {
    view.innerHTML = failure(err);
    view.dataset.ready = 'error';
  }
}

document.getElementById('lang').addEventListener('click', () => {
  setLang(lang() === 'zh' ? 'en' : 'zh');
  route();
});
document.getElementById('logout').addEventListener('click', () => {
  clearKey();
  caps = null;
  location.hash = '#/overview';
  route();
});
window.addEventListener('hashchange', route);
route(); // a module script runs once the document is parsed (and after the deferred ECharts)
