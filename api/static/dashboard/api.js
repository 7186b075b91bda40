// Calls to the meterhub API with the session's key in the X-API-Key header.
import { getKey } from './session.js';

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

async function request(path, { method = 'GET', params, body, text = false, blob = false } = {}) {
  const headers = {};
  const key = getKey();
  if (key) headers['X-API-Key'] = key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path + query(params), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  if (!response.ok && !(path === '/readyz' && response.status === 503)) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      problem = null;
    }
    throw new ApiError(response.status, problem);
  }
  if (blob) return { blob: await response.blob(), type: response.headers.get('content-type') };
  return text ? response.text() : response.json();
}

export const get = (path, params) => request(path, { params });
export const getText = (path, params) => request(path, { params, text: true });
export const getBlob = (path, params) => request(path, { params, blob: true });
export const post = (path, body) => request(path, { method: 'POST', body });

/** `promise`'s value, or `fallback` when the API answers one of `statuses` (e.g. 403, 404). */
export async function optional(promise, statuses = [403, 404], fallback = null) {
  try {
    return await promise;
  } catch (err) {
    if (err instanceof ApiError && statuses.includes(err.status)) return fallback;
    throw err;
  }
}
