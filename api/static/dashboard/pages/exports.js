// The notice's printable HTML and XLSX exports (GET /v1/notices/{week}/export).
import { getBlob } from '../api.js';

/** {path, params} of the notice export in `kind` ('html' or 'xlsx'). */
export async function noticeExport(kind) {
  return { path: '/v1/notices/{week}/export', params: { format: kind } };
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
