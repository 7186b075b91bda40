// ECharts (vendored, window.echarts) in the page's language; no animation in test mode.
import { lang } from './i18n/index.js';

const live = new Set();

export function testMode() {
  return Boolean(window.MHUB_TEST) || new URLSearchParams(location.search).get('test') === '1';
}

// Okabe-Ito: distinguishable with the common colour-vision deficiencies.
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00',
  '#F0E442', '#000000'];

export function chart(el, option) {
  const instance = window.echarts.init(el, null, {
    locale: lang() === 'zh' ? 'ZH' : 'EN',
    renderer: 'svg',
  });
  instance.setOption({
    animation: !testMode(),
    color: PALETTE,
    textStyle: { fontFamily: getComputedStyle(document.documentElement).fontFamily },
    grid: { left: 60, right: 20, top: 40, bottom: 40, containLabel: true },
    ...option,
  });
  live.add(instance);
  return instance;
}

export function disposeAll() {
  for (const c of live) c.dispose();
  live.clear();
}

window.addEventListener('resize', () => {
  for (const c of live) c.resize();
});
