// Where the API serves a notice as printable HTML or XLSX, read from its OpenAPI document;
// null while it serves none (the export endpoints are added separately).
import { getBlob } from '../api.js';

let spec = null;

async function openapi() {
  if (spec === null) {
    const response = await fetch('/openapi.json', { cache: 'no-store' });
    spec = response.ok ? await response.json() : {};
  }
  return spec;
}

function formatParam(op) {
  return (op.parameters || []).find((p) => p.in === 'query' && p.name === 'format');
}

function enumOf(schema) {
  if (!schema) return [];
  if (schema.enum) return schema.enum;
  if (schema.$ref) return enumOf(spec.components?.schemas?.[schema.$ref.split('/').pop()]);
  return [...(schema.anyOf || []), ...(schema.allOf || [])].flatMap(enumOf);
}

/** {path, params} of the notice export in `kind` ('html' or 'xlsx'), or null. */
export async function noticeExport(kind) {
  const doc = await openapi();
  const mime = kind === 'html' ? 'text/html' : 'spreadsheetml';
  for (const [path, item] of Object.entries(doc.paths || {})) {
    if (!path.startsWith('/v1/notices/{week}') || path.includes('/items') || !item.get) continue;
    const op = item.get;
    const param = formatParam(op);
    if (param && enumOf(param.schema).includes(kind)) return { path, params: { format: kind } };
    const types = Object.keys(op.responses?.['200']?.content || {});
    if (types.some((t) => t.includes(mime)) && (path.includes(kind) || path.includes('export') || types.length === 1)) {
      return { path, params: {} };
    }
  }
  return null;
}

/** Fetch the export with the session's key and open (HTML) or save (XLSX) it. */
export async function openExport(found, week, kind) {
  const { blob } = await getBlob(found.path.replace('{week}', week), found.params);
  const url = URL.createObjectURL(blob);
  if (kind === 'html') {
    window.open(url, '_blank', 'noopener');
  } else {
    const a = document.createElement('a');
    a.href = url;
    a.download = `notice-${week}.xlsx`;
    a.click();
  }
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
