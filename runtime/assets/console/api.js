// The JSON API as the console uses it: the session travels in the HttpOnly `sb_session`
// cookie, state-changing requests echo the `sb_csrf` cookie in `X-CSRF-Token`, and tenant
// routes name the chosen tenant with `?tenant=<slug>`.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

let tenant = null;
let unauthorized = () => {};

export function setTenant(slug) { tenant = slug || null; }
export function getTenant() { return tenant; }
/** Called when a request answers 401: the session ended. */
export function onUnauthorized(f) { unauthorized = f; }

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)sb_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : '';
}

/** `/api/v1<path>` with the query `params` (empty values left out) and the tenant. */
export function apiUrl(path, params = {}, scoped = true) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '' && v !== false) q.set(k, String(v));
  }
  if (scoped && tenant) q.set('tenant', tenant);
  const s = q.toString();
  return `/api/v1${path}${s ? `?${s}` : ''}`;
}

async function request(method, path, { params, body, scoped = true, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf();
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const r = await fetch(apiUrl(path, params, scoped), {
    method, headers, body: payload, credentials: 'same-origin', signal,
  });
  if (r.status === 204) return null;
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) {
    const err = new ApiError(r.status, data?.error?.code || `http_${r.status}`, data?.error?.message || r.statusText);
    if (r.status === 401 && path !== '/auth/sign-in') unauthorized(err);
    throw err;
  }
  return data;
}

export const get = (path, params, opts) => request('GET', path, { ...opts, params });
export const post = (path, body, opts) => request('POST', path, { ...opts, body });
export const put = (path, body, opts) => request('PUT', path, { ...opts, body });
export const patch = (path, body, opts) => request('PATCH', path, { ...opts, body });
export const del = (path, opts) => request('DELETE', path, opts);

/**
 * Uploads one file as the raw body of `POST /knowledge/documents?source=<name>` (the API takes
 * the file as it is), reporting progress with XMLHttpRequest's upload events.
 */
export function uploadDocument(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', apiUrl('/knowledge/documents', { source: file.name }));
    xhr.setRequestHeader('X-CSRF-Token', csrf());
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      const data = xhr.response;
      if (xhr.status >= 200 && xhr.status < 300) { onProgress(1); resolve(data); } else {
        reject(new ApiError(xhr.status, data?.error?.code || `http_${xhr.status}`, data?.error?.message || xhr.statusText));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'network error'));
    xhr.send(file);
  });
}
