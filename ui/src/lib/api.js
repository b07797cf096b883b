// The admin API client: keeps the admin token in sessionStorage (this tab
// only), sends it as a Bearer token on every call, turns error answers
// (`{"detail": "..."}`) into ApiError and reports any 401 so the app can
// go back to the sign-in screen.

const TOKEN_KEY = 'sluice.admin.token';

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage unavailable: nothing kept */
  }
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
}

let unauthorized = () => {};

/** Called (once per 401) when the API refuses the token. */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

async function send(method, path, body, token) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, cache: 'no-store', credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `network error: ${e.message}`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!res.ok) {
    let detail = data && typeof data === 'object' && 'detail' in data ? data.detail : data;
    if (typeof detail !== 'string') detail = detail ? JSON.stringify(detail) : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, detail);
  }
  return data;
}

/** One admin API call with the stored token; a 401 signs out. */
export async function api(method, path, body) {
  try {
    return await send(method, path, body, getToken());
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      clearToken();
      unauthorized(e.detail);
    }
    throw e;
  }
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);
export const put = (path, body) => api('PUT', path, body);
export const del = (path) => api('DELETE', path);

/** Checks a candidate token with GET /api/v1/whoami (no sign-out on 401). */
export function whoami(token) {
  return send('GET', '/api/v1/whoami', undefined, token);
}

/** An admin user's sign-in (POST /api/v1/auth/login): its access token. */
export function login(email, password) {
  return send('POST', '/api/v1/auth/login', { email, password });
}

/** `a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * The field an error detail starts with, or null: `namespace_code: ...` →
 * `namespace_code`; `rules[id=7]: rule_config.max_requests: ...` (or
 * `rules[id=7].rule_config.max_requests: ...`) → `rules[id=7].rule_config.max_requests`.
 */
export function errorField(detail) {
  if (typeof detail !== 'string') return null;
  const parts = [];
  let rest = detail;
  let m;
  while ((m = /^\s*([A-Za-z_][A-Za-z0-9_.[\]=]*)\s*[:：]/.exec(rest))) {
    parts.push(m[1]);
    rest = rest.slice(m[0].length);
  }
  if (parts.length) return parts.join('.');
  m = /^([A-Za-z_][A-Za-z0-9_]*)\s/.exec(detail);
  return m ? m[1] : null;
}

/** Whether the error field `field` names the input of API field `name`. */
export function fieldMatches(field, name) {
  if (!field || !name) return false;
  if (field === name) return true;
  const plain = field.replace(/\[[^\]]*\]/g, '');
  const parts = plain.split('.');
  return plain === name || plain.endsWith(`.${name}`) || parts[parts.length - 1] === name;
}
