// The Prometheus text format (version 0.0.4), enough of it for the health page.
const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

const TYPE = /^#\s*TYPE\s+(\S+)\s+(\S+)/;

/** The samples of an exposition; `.declared` holds every metric family it declares (a
 * labelled counter that has counted nothing yet is declared but has no sample). */
export function parse(text) {
  const samples = [];
  samples.declared = new Set();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const type = TYPE.exec(line);
    if (type) {
      samples.declared.add(type[1]);
      if (type[2] === 'counter') samples.declared.add(`${type[1]}_total`);
    }
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      for (const l of m[3].matchAll(LABEL)) {
        labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      }
    }
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    samples.push({ name: m[1], labels, value });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels match `where`: 0 for a declared family
 * without a matching sample, null for a metric this process does not export. */
export function total(samples, name, where = {}) {
  let found = false;
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (!Object.entries(where).every(([k, v]) => s.labels[k] === v)) continue;
    found = true;
    sum += s.value;
  }
  if (found) return sum;
  return samples.declared && samples.declared.has(name) ? 0 : null;
}
