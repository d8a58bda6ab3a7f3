// The server's API, called with the console session (an HttpOnly cookie the page never sees)
// and, on every call that changes something, the session's CSRF token in X-CSRF-Token.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || ('HTTP ' + status));
    this.status = status;
    this.code = code;
  }
}

export const session = { user: null, csrf: null, onExpired: null };

export async function api(method, path, body, { allow = [] } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network_error', 'The server could not be reached: ' + e.message);
  }
  const text = await resp.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }
  if (resp.ok || allow.includes(resp.status)) {
    if (doc && typeof doc === 'object') Object.defineProperty(doc, '_status', { value: resp.status });
    return doc;
  }
  const err = doc && doc.error ? doc.error : {};
  const e = new ApiError(resp.status, err.code || 'http_' + resp.status,
    err.message || ('The server answered HTTP ' + resp.status));
  if ((e.code === 'unauthenticated' || e.code === 'session_expired') && !path.startsWith('/console/api/')
      && session.onExpired) session.onExpired(e);
  throw e;
}

export const get = (p, o) => api('GET', p, undefined, o);
export const post = (p, b, o) => api('POST', p, b === undefined ? undefined : b, o);
export const put = (p, b) => api('PUT', p, b);
export const del = (p, b) => api('DELETE', p, b);

// A query string from an object, leaving out empty values.
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, v);
  const s = u.toString();
  return s ? '?' + s : '';
}

export const enc = encodeURIComponent;

export function isAdmin() {
  return session.user && session.user.role === 'admin';
}
