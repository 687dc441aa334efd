// The console's only way to the server: the public API, with the Bearer token of the login.
// The token lives in sessionStorage (gone when the tab closes), never in a URL, a cookie or
// the browser's lasting storage; every request is sent without cookies.

const TOKEN = 'floatkey.token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
}

export const session = {
  token: sessionStorage.getItem(TOKEN),
  /** 'open' (no login), 'authentication', or '' before the server was asked. */
  mode: '',
  get claims() {
    if (!this.token || this.mode !== 'authentication') return null;
    try {
      const part = this.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
    } catch {
      return null;
    }
  },
  get username() {
    return this.claims?.username || '';
  },
  /** In open mode admin routes answer adminNetworks: the console offers everything. */
  get role() {
    return this.mode === 'open' ? 'admin' : this.claims?.role || '';
  },
  get isAdmin() {
    return this.role === 'admin';
  },
  set(token) {
    this.token = token;
    if (token) sessionStorage.setItem(TOKEN, token);
    else sessionStorage.removeItem(TOKEN);
  },
};

/** Listeners told when the server refuses the token (401): the console shows the login. */
export const onUnauthorized = new Set();

async function send(method, path, { body, headers = {}, raw = false } = {}) {
  const all = { ...headers };
  if (session.token && session.mode === 'authentication' && !all.Authorization) {
    all.Authorization = `Bearer ${session.token}`;
  }
  const init = { method, headers: all, credentials: 'omit', cache: 'no-store', redirect: 'error' };
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    all['Content-Type'] = 'application/octet-stream';
    init.body = body;
  } else if (body !== undefined) {
    all['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const answer = await fetch(path, init);
  if (!answer.ok) {
    let error = { message: `${answer.status} ${answer.statusText}` };
    try {
      error = await answer.json();
    } catch {
      // not JSON: keep the status line
    }
    if (answer.status === 401 && !all.Authorization?.startsWith('Basic')) {
      for (const listener of onUnauthorized) listener();
    }
    throw new ApiError(answer.status, error.code, error.message);
  }
  if (raw) return answer;
  const type = answer.headers.get('Content-Type') || '';
  return type.includes('json') ? answer.json() : answer.text();
}

export const api = {
  get: (path, options) => send('GET', path, options),
  post: (path, body, options = {}) => send('POST', path, { ...options, body }),
  del: (path) => send('DELETE', path),
  raw: (path) => send('GET', path, { raw: true }),
};

/** Query string from an object (values percent-encoded). */
export function query(params) {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') search.set(k, v);
  return search.toString();
}

/** Which mode the server runs in: GET /auth answers a worthless token in open mode only. */
export async function detectMode() {
  try {
    const answer = await fetch('/auth', { credentials: 'omit', cache: 'no-store' });
    const body = answer.ok ? await answer.json() : {};
    session.mode = answer.ok && body.token === 'open-mode' ? 'open' : 'authentication';
  } catch {
    session.mode = 'authentication';
  }
  return session.mode;
}

function base64(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** Log in with GET /auth (HTTP Basic); answers {token, must_change_password}. */
export async function login(username, password) {
  const answer = await send('GET', '/auth', {
    headers: { Authorization: `Basic ${base64(`${username}:${password}`)}` },
  });
  session.set(answer.token);
  return answer;
}

export function logout() {
  session.set(null);
}
