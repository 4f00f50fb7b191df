/* plantd web UI (vanilla ES2020, no build step, no dependencies).
 *
 * Built on the HTTP contract in docs/web-api.md. Structure, top to bottom:
 *   1. helpers   $ / el, the status line (#status), api(): every fetch goes through it, adds
 *                the bearer token, turns a non-2xx answer into the server's {code,message,field}
 *                shown in #status, and sends a 401 back to the login form;
 *                live(): an EventSource (authenticated by the HttpOnly plantd_session cookie,
 *                as EventSource cannot send headers) that shows the real HTTP error when the
 *                server refuses the stream;
 *   2. session   whoami at start, login, logout, switching views;
 *   3. services  table, live health (SSE health/watch), counters polled every 2 s;
 *   4. state     scope picker, live table (SSE state watch), editor with If-Match, add key;
 *   5. console   POST /req/{subject};
 *   6. bus       SSE bus tail drawn as a line chart on a canvas, by hand;
 *   7. logs      logger query.
 * Text from the plant is always set with textContent, never parsed as HTML.
 */
'use strict';

// ---- 1. helpers ---------------------------------------------------------------------------

const $ = (sel) => document.querySelector(sel);
const API = '/api/v1';
const TOKEN_KEY = 'plantd_token';
const seg = encodeURIComponent; // every path segment: keys may hold dots, slashes, spaces

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function showStatus(text, kind = 'error') {
  $('#status').textContent = text;
  $('#status').className = text ? kind : '';
}

const errorText = (err) => (err.field ? `${err.message} (field: ${err.field})` : err.message);

class ApiError extends Error {
  constructor(status, body, text = '') {
    super((body && body.message) || text || `HTTP ${status}`);
    this.status = status;
    this.field = body && body.field;
    this.text = text;
  }
}

/** Calls the API; resolves to {status, data, text}. A non-2xx answer throws an ApiError, shown
 *  in #status unless opts.quiet; a 401 also returns to the login form (unless opts.noRedirect).
 *  opts: json (a body to send as JSON), raw (a body as is), headers, probe (only the status of
 *  a success is wanted: the body, e.g. an event stream, is not read). */
async function api(method, path, opts = {}) {
  const headers = { ...opts.headers };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  let body = opts.raw;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['Content-Type'] = 'application/json';
  }
  const ctl = new AbortController();
  let res;
  try {
    res = await fetch(API + path, { method, headers, body, signal: ctl.signal });
  } catch (e) {
    const err = new ApiError(0, { message: `cannot reach the server (${e.message})` });
    if (!opts.quiet) showStatus(`${method} ${path}: ${err.message}`);
    throw err;
  }
  if (res.ok && opts.probe) {
    ctl.abort();
    return { status: res.status };
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (res.ok) return { status: res.status, data, text };
  const err = new ApiError(res.status, data && typeof data === 'object' ? data : null, text);
  if (res.status === 401 && !opts.noRedirect) loggedOut(`Please log in: ${err.message}`);
  else if (!opts.quiet) showStatus(`${method} ${path}: ${errorText(err)}`);
  throw err;
}

/** Streams SSE `event`s of `path` to fn(data); `warning` events ({message}) go to #status.
 *  The browser reconnects by itself (sending Last-Event-ID); when the server refuses the
 *  stream outright, EventSource hides why, so the same path is fetched to show the error: a
 *  4xx stops, anything else retries in 3 s. onState gets 'live', 'reconnecting', 'stopped' and
 *  'reopen' (a fresh stream follows). */
function live(path, event, fn, onState = () => {}) {
  const s = { es: null, timer: null, closed: false };
  const open = () => {
    const es = new EventSource(API + path);
    s.es = es;
    es.onopen = () => onState('live');
    es.addEventListener(event, (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch { return; }
      fn(data);
    });
    // The stream goes on after a `warning` (e.g. the service behind it is unreachable).
    es.addEventListener('warning', (e) => {
      let data = {};
      try { data = JSON.parse(e.data); } catch { /* no detail */ }
      showStatus(`${path}: ${data.message || 'warning'}`);
    });
    es.onerror = async () => {
      if (s.closed) return;
      onState('reconnecting');
      if (es.readyState !== EventSource.CLOSED) return;
      try {
        await api('GET', path, { probe: true });
      } catch (e) {
        if (e.status >= 400 && e.status < 500) { onState('stopped'); return; }
      }
      s.timer = setTimeout(() => { if (!s.closed) { onState('reopen'); open(); } }, 3000);
    };
  };
  open();
  return { close() { s.closed = true; clearTimeout(s.timer); if (s.es) s.es.close(); } };
}

const liveText = {
  live: '● live', reconnecting: '○ reconnecting…', reopen: '○ reconnecting…', stopped: '✖ stopped',
};

// ---- 2. session and views -----------------------------------------------------------------

const views = ['services', 'state', 'console', 'bus', 'logs'];
let currentView = 'services';

async function start() {
  wire();
  try {
    loggedIn((await api('GET', '/whoami', { noRedirect: true, quiet: true })).data);
  } catch (e) {
    loggedOut('');
    if (e.status !== 401) showStatus(`GET /whoami: ${errorText(e)}`);
  }
}

function loggedIn(who) {
  const auth = who.auth !== false; // a hub without authentication answers auth:false
  const roles = (who.roles || []).map((r) => (r.scope ? `${r.role}@${r.scope}` : r.role));
  $('#whoami').textContent = auth
    ? `${who.username}${roles.length ? ` (${roles.join(', ')})` : ''}`
    : `${who.username} (no authentication)`;
  $('#logout').hidden = !auth;
  $('#nav').hidden = false;
  $('#view-login').hidden = true;
  const wanted = location.hash.slice(1);
  show(views.includes(wanted) ? wanted : currentView);
}

function loggedOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  services.stop();
  state.close();
  bus.stop();
  $('#whoami').textContent = '';
  $('#logout').hidden = true;
  $('#nav').hidden = true;
  for (const v of views) $(`#view-${v}`).hidden = true;
  $('#view-login').hidden = false;
  $('#login-error').textContent = message;
  showStatus('');
  $('#login-username').focus();
}

async function login(event) {
  event.preventDefault();
  $('#login-error').textContent = '';
  $('#login-submit').disabled = true;
  try {
    const { data } = await api('POST', '/login', {
      json: { username: $('#login-username').value, password: $('#login-password').value },
      noRedirect: true,
      quiet: true,
    });
    sessionStorage.setItem(TOKEN_KEY, data.token);
    $('#login-password').value = '';
    loggedIn((await api('GET', '/whoami')).data);
  } catch (e) {
    $('#login-error').textContent = errorText(e);
  } finally {
    $('#login-submit').disabled = false;
  }
}

async function logout() {
  try {
    await api('POST', '/logout', { noRedirect: true, quiet: true });
  } catch { /* the session is over either way */ }
  loggedOut('Logged out.');
}

/** Shows one view; the services view's live parts run only while it is shown. */
function show(view) {
  if (currentView !== view) showStatus('');
  currentView = view;
  if (location.hash !== `#${view}`) history.replaceState(null, '', `#${view}`);
  for (const v of views) {
    $(`#view-${v}`).hidden = v !== view;
    $(`#nav-${v}`).setAttribute('aria-current', v === view ? 'page' : 'false');
  }
  if (view === 'services') services.start(); else services.stop();
  if (view === 'state') state.loadScopes();
  if (view === 'bus') bus.draw();
}

function onSubmit(sel, fn) {
  $(sel).addEventListener('submit', (e) => { e.preventDefault(); fn(); });
}

function wire() {
  $('#login-form').addEventListener('submit', login);
  $('#logout').addEventListener('click', logout);
  for (const v of views) $(`#nav-${v}`).addEventListener('click', () => show(v));
  $('#services-refresh').addEventListener('click', () => services.load());
  onSubmit('#scope-form', () => state.open($('#scope-input').value.trim()));
  onSubmit('#new-form', () => state.add());
  $('#edit-save').addEventListener('click', () => state.save());
  $('#edit-cancel').addEventListener('click', () => state.closeEditor());
  $('#editor').addEventListener('keydown', (e) => { if (e.key === 'Escape') state.closeEditor(); });
  onSubmit('#req-form', request);
  onSubmit('#bus-form', () => bus.start());
  $('#bus-stop').addEventListener('click', () => bus.stop());
  onSubmit('#logs-form', searchLogs);
  window.addEventListener('resize', () => bus.draw());
}

// ---- 3. services --------------------------------------------------------------------------

/** `healthy`, `HEALTH_STATUS_DEGRADED`, `Unhealthy` -> the plain word; else `unknown`. */
function healthName(status) {
  const s = String(status || '').toLowerCase().replace(/^health_status_/, '');
  return ['healthy', 'degraded', 'unhealthy'].includes(s) ? s : 'unknown';
}

const services = {
  watch: null,
  timer: null,
  running: false,
  reloading: false,

  start() {
    if (this.running) return;
    this.running = true;
    this.load();
    this.watch = live('/health/watch', 'health', (d) => this.health(d));
    this.timer = setInterval(() => this.poll(), 2000);
  },

  stop() {
    this.running = false;
    if (this.watch) this.watch.close();
    this.watch = null;
    clearInterval(this.timer);
  },

  rows() { return [...document.querySelectorAll('#services-table tbody tr[data-service]')]; },
  rowOf(name, id) {
    return this.rows().find((tr) => tr.dataset.service === name && tr.dataset.id === id);
  },

  async load() {
    let data;
    try { ({ data } = await api('GET', '/services')); } catch { return; }
    const list = (data.services || []).slice();
    list.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    const body = $('#services-table tbody');
    body.replaceChildren();
    for (const s of list) {
      const tr = el('tr');
      tr.dataset.service = s.name;
      tr.dataset.id = s.id;
      tr.append(el('td', s.name), el('td', s.version), el('td', s.id, 'mono'),
        el('td', (s.endpoints || []).length, 'num'), el('td', '–', 'num requests'),
        el('td', '–', 'num errors'), el('td', '–', 'num avg'), el('td', '', 'health'));
      body.append(tr);
      this.setHealth(tr, s.health || {});
    }
    if (!list.length) {
      const tr = el('tr');
      tr.append(el('td', 'No service answered.'));
      body.append(tr);
    }
    this.poll();
  },

  setHealth(tr, h) {
    const status = healthName(h.status);
    const cell = tr.querySelector('.health');
    cell.textContent = h.reason ? `${status} — ${h.reason}` : status;
    cell.className = `health health-${status}`;
  },

  /** A health event lists every instance: one that came or went makes the list read again. */
  health(data) {
    const list = data.services || [];
    let changed = list.length !== this.rows().length;
    for (const h of list) {
      const tr = this.rowOf(h.name, h.id);
      if (tr) this.setHealth(tr, h); else changed = true;
    }
    if (changed && !this.reloading) {
      this.reloading = true;
      setTimeout(() => { this.reloading = false; if (this.running) this.load(); }, 500);
    }
  },

  poll() {
    if (!this.running) return;
    for (const name of new Set(this.rows().map((tr) => tr.dataset.service))) {
      api('GET', `/services/${seg(name)}/stats`, { quiet: true }).then(({ data }) => {
        for (const st of data.stats || []) {
          const tr = this.rowOf(name, st.id);
          if (tr) this.setStats(tr, st.endpoints || []);
        }
      }).catch(() => { /* a missed poll: the next one comes in 2 s */ });
    }
  },

  setStats(tr, endpoints) {
    let reqs = 0, errs = 0, total = 0;
    for (const ep of endpoints) {
      const n = Number(ep.num_requests) || 0;
      reqs += n;
      errs += Number(ep.num_errors) || 0;
      total += (Number(ep.average_processing_time) || 0) * n;
    }
    tr.querySelector('.requests').textContent = reqs;
    tr.querySelector('.errors').textContent = errs;
    // NATS micro reports nanoseconds; shown in milliseconds, weighted by requests.
    tr.querySelector('.avg').textContent = reqs ? `${(total / reqs / 1e6).toFixed(2)} ms` : '–';
  },
};

// ---- 4. state -----------------------------------------------------------------------------

const state = {
  scope: '',
  watch: null,
  rows: new Map(), // key -> tr
  editing: null, // {key, version}: the version the editor was opened with
  pending: new Set(), // keys whose version must be read again
  pendingTimer: null,

  base() { return `/state/${seg(this.scope)}`; },
  keyPath(key) { return `${this.base()}/keys/${seg(key)}`; },

  async loadScopes() {
    try {
      const { data } = await api('GET', '/scopes', { quiet: true });
      $('#scope-list').replaceChildren(...(data.scopes || []).map((s) => {
        const o = el('option');
        o.value = s.name;
        o.label = `${s.name} (${s.key_count} keys)`;
        return o;
      }));
    } catch { /* the datalist is only a help */ }
  },

  close() {
    if (this.watch) this.watch.close();
    this.watch = null;
    this.closeEditor();
  },

  clear() {
    this.rows.clear();
    $('#state-table tbody').replaceChildren();
  },

  open(scope) {
    if (!scope) return;
    this.close();
    this.scope = scope;
    this.clear();
    $('#new-form').hidden = false;
    $('#state-title').textContent = `State: ${scope}`;
    // from=current: first the current value of every key, then live changes.
    const path = `${this.base()}/watch?from=current`;
    this.watch = live(path, 'change', (c) => this.change(c), (s) => {
      if (s === 'reopen') this.clear(); // a fresh stream replays every current value
      $('#scope-live').textContent = liveText[s];
    });
  },

  /** The row of `key`, made if missing and inserted in key order (binary search). */
  ensureRow(key) {
    let tr = this.rows.get(key);
    if (tr) return tr;
    tr = el('tr');
    tr.dataset.key = key;
    const edit = el('button', 'Edit', 'edit');
    edit.type = 'button';
    edit.setAttribute('aria-label', `Edit ${key}`);
    edit.addEventListener('click', () => this.edit(key));
    const actions = el('td');
    actions.append(edit);
    tr.append(el('td', key, 'key mono'), el('td', '', 'value mono'), el('td', '', 'version num'),
      actions);
    const list = $('#state-table tbody').children;
    let lo = 0, hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].dataset.key < key) lo = mid + 1; else hi = mid;
    }
    $('#state-table tbody').insertBefore(tr, list[lo] || null);
    this.rows.set(key, tr);
    return tr;
  },

  setRow(key, value, version) {
    const existed = this.rows.has(key);
    const tr = this.ensureRow(key);
    const cell = tr.querySelector('.value');
    if (existed && cell.textContent !== value) { // highlight a live change
      tr.classList.remove('flash');
      void tr.offsetWidth; // restarts the animation
      tr.classList.add('flash');
    }
    cell.textContent = value;
    if (version !== undefined) this.setVersion(key, version);
  },

  /** Versions only grow while a key exists: a late, older answer never hides a newer one. */
  setVersion(key, version) {
    const tr = this.rows.get(key);
    if (!tr || Number(tr.dataset.version) > Number(version)) return;
    tr.dataset.version = version;
    tr.querySelector('.version').textContent = version;
  },

  change(c) {
    if (c.scope !== undefined && c.scope !== this.scope) return;
    if (c.op === 'put') {
      this.setRow(c.key, c.value, c.version);
      // The event carries the bucket's revision, not the key's version: read that.
      if (c.version === undefined) this.refreshVersion(c.key);
    } else if (this.rows.has(c.key)) { // delete or purge
      this.rows.get(c.key).remove();
      this.rows.delete(c.key);
    }
  },

  /** Reads the versions of changed keys 100 ms later: a GET per key, or pages of the list
   *  when many changed at once (the replay of a large scope). */
  refreshVersion(key) {
    this.pending.add(key);
    if (this.pendingTimer) return;
    this.pendingTimer = setTimeout(async () => {
      this.pendingTimer = null;
      const keys = [...this.pending];
      this.pending.clear();
      const scope = this.scope;
      const set = (k, v) => { if (scope === this.scope) this.setVersion(k, v); };
      try {
        if (keys.length <= 20) {
          await Promise.all(keys.map(async (k) => {
            set(k, (await api('GET', this.keyPath(k), { quiet: true })).data.version);
          }));
          return;
        }
        let token = '';
        do {
          const page = token ? `&page_token=${seg(token)}` : '';
          const { data } = await api('GET', `${this.base()}?limit=1000${page}`, { quiet: true });
          for (const e of data.entries || []) set(e.key, e.version);
          token = scope === this.scope ? data.next_page_token || '' : '';
        } while (token);
      } catch { /* deleted meanwhile, or not readable: the row keeps what it showed */ }
    }, 100);
  },

  editorAt(key, version) {
    if (this.editing) this.editing.version = version;
    $('#edit-title').textContent = `Edit ${key} (version ${version})`;
  },

  async edit(key) {
    let data;
    try { ({ data } = await api('GET', this.keyPath(key))); } catch { return; }
    this.editing = { key, version: data.version };
    this.editorAt(key, data.version);
    $('#edit-value').value = data.value;
    $('#edit-message').textContent = '';
    $('#edit-message').className = '';
    $('#editor').hidden = false;
    $('#edit-value').focus();
  },

  closeEditor() {
    this.editing = null;
    $('#editor').hidden = true;
  },

  async save() {
    if (!this.editing) return;
    const { key, version } = this.editing;
    const value = $('#edit-value').value;
    const msg = $('#edit-message');
    try {
      const { data } = await api('PUT', this.keyPath(key), {
        json: { value }, headers: { 'If-Match': `"${version}"` }, quiet: true,
      });
      this.editorAt(key, data.version);
      this.setRow(key, value, data.version);
      msg.textContent = `saved (version ${data.version})`;
      msg.className = 'ok';
    } catch (e) {
      msg.className = 'error';
      if (e.status !== 409) { msg.textContent = errorText(e); return; }
      let now = '';
      try {
        const cur = (await api('GET', this.keyPath(key), { quiet: true })).data;
        now = ` It is now at version ${cur.version} with value ${JSON.stringify(cur.value)}.`;
        this.editorAt(key, cur.version); // so a second Save overwrites it knowingly
      } catch (g) {
        if (g.status === 404) now = ' It has been deleted.';
      }
      msg.textContent = `conflict: ${key} changed since you opened it at version ${version}.${now}` +
        ' Your text is kept: Save again to overwrite, or Cancel.';
    }
  },

  async add() {
    const key = $('#new-key').value.trim();
    const value = $('#new-value').value;
    if (!key) return;
    try {
      const { data } = await api('PUT', this.keyPath(key), {
        json: { value }, headers: { 'If-None-Match': '*' },
      });
      this.setRow(key, value, data.version);
      showStatus(`added ${key} (version ${data.version})`, 'ok');
      $('#new-key').value = '';
      $('#new-value').value = '';
    } catch { /* shown in #status */ }
  },
};

// ---- 5. request console -------------------------------------------------------------------

const pretty = (text) => {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
};

async function request() {
  const subject = $('#req-subject').value.trim();
  const timeout = Number($('#req-timeout').value) || 2000;
  const body = $('#req-body').value;
  const out = $('#req-output');
  out.textContent = '…';
  let type = 'application/json';
  try { JSON.parse(body); } catch { type = 'text/plain; charset=utf-8'; }
  const started = performance.now();
  try {
    const res = await api('POST', `/req/${seg(subject)}?timeout_ms=${timeout}`, {
      raw: body, headers: { 'Content-Type': type },
    });
    const ms = Math.round(performance.now() - started);
    out.textContent = `${res.status} OK in ${ms} ms\n\n${pretty(res.text)}`;
  } catch (e) {
    out.textContent = `${e.status || 'error'}: ${errorText(e)}\n\n${pretty(e.text || '')}`;
  }
}

// ---- 6. bus chart -------------------------------------------------------------------------

const COLORS = ['#1f6feb', '#d9480f', '#2b8a3e', '#9c36b5', '#c92a2a', '#0b7285', '#5c940d', '#862e9c'];
const MAX_POINTS = 120; // per topic
const MAX_LOG = 20;

/** A number out of a payload: the text itself, or a JSON object's numeric `value`. */
function numberIn(data) {
  const text = String(data).trim();
  if (text !== '' && Number.isFinite(Number(text))) return Number(text);
  try {
    const v = JSON.parse(text).value;
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

const bus = {
  watch: null,
  series: new Map(), // topic -> [{t, v}]
  frame: 0,

  start() {
    this.stop();
    const name = $('#bus-name').value.trim() || 'data';
    const topic = $('#bus-topic').value.trim();
    this.series.clear();
    $('#bus-log').replaceChildren();
    const path = `/bus/${seg(name)}/tail${topic ? `?topic=${seg(topic)}` : ''}`;
    this.watch = live(path, 'message', (m) => this.message(m));
    $('#bus-start').disabled = true;
    $('#bus-stop').disabled = false;
    this.draw();
  },

  stop() {
    if (this.watch) this.watch.close();
    this.watch = null;
    $('#bus-start').disabled = false;
    $('#bus-stop').disabled = true;
  },

  message(m) {
    const t = Date.now();
    const v = numberIn(m.data);
    if (v !== null) {
      if (!this.series.has(m.topic)) this.series.set(m.topic, []);
      const points = this.series.get(m.topic);
      points.push({ t, v });
      if (points.length > MAX_POINTS) points.shift();
    }
    const list = $('#bus-log');
    list.prepend(el('li', `${new Date(t).toLocaleTimeString()}  ${m.topic}  ${m.data}`));
    while (list.children.length > MAX_LOG) list.lastChild.remove();
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  },

  draw() {
    const canvas = $('#bus-chart');
    const width = canvas.clientWidth, height = canvas.clientHeight;
    if (!width || !height) return; // hidden
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.font = '16px system-ui, sans-serif';
    const left = 70, right = 12, top = 30, bottom = 28;
    const w = width - left - right, h = height - top - bottom;
    g.strokeStyle = '#666';
    g.fillStyle = '#222';
    g.strokeRect(left, top, w, h);
    const all = [...this.series.values()].flat();
    if (!all.length) {
      g.fillText(this.watch ? 'waiting for numeric messages…' : 'press Start', left + 12, top + 24);
      return;
    }
    let min = Math.min(...all.map((p) => p.v)), max = Math.max(...all.map((p) => p.v));
    if (min === max) { min -= 1; max += 1; }
    const t0 = Math.min(...all.map((p) => p.t)), t1 = Math.max(Date.now(), t0 + 1000);
    const x = (t) => left + ((t - t0) / (t1 - t0)) * w;
    const y = (v) => top + h - ((v - min) / (max - min)) * h;
    const digits = Math.min(6, Math.max(0, 2 - Math.floor(Math.log10(max - min))));
    const fmt = (v) => v.toFixed(digits);
    // Axes: min, middle and max on the left; the oldest point's time and "now" below.
    g.textAlign = 'right';
    g.fillText(fmt(max), left - 6, top + 12);
    g.fillText(fmt((min + max) / 2), left - 6, top + h / 2 + 5);
    g.fillText(fmt(min), left - 6, top + h);
    g.fillText('now', left + w, height - 8);
    g.textAlign = 'left';
    g.fillText(new Date(t0).toLocaleTimeString(), left, height - 8);
    g.strokeStyle = '#e1e4e8';
    g.beginPath();
    g.moveTo(left, top + h / 2);
    g.lineTo(left + w, top + h / 2);
    g.stroke();
    // One line per topic; the legend above the plot names each with its last value.
    let i = 0, legendX = left;
    g.lineWidth = 2;
    for (const [topic, points] of this.series) {
      g.strokeStyle = g.fillStyle = COLORS[i++ % COLORS.length];
      g.beginPath();
      points.forEach((p, k) => (k ? g.lineTo(x(p.t), y(p.v)) : g.moveTo(x(p.t), y(p.v))));
      g.stroke();
      const label = `${topic}: ${fmt(points[points.length - 1].v)}`;
      g.fillText(label, legendX, 18);
      legendX += g.measureText(label).width + 20;
    }
  },
};

// ---- 7. logs ------------------------------------------------------------------------------

async function searchLogs() {
  const q = new URLSearchParams({ limit: '200' });
  for (const name of ['service', 'level', 'contains']) {
    const v = $(`#logs-${name}`).value.trim();
    if (v) q.set(name, v);
  }
  const body = $('#logs-table tbody');
  const msg = $('#logs-message');
  msg.textContent = 'searching…';
  try {
    const { data } = await api('GET', `/logs?${q}`);
    const records = data.records || [];
    body.replaceChildren(...records.map((r) => {
      const tr = el('tr', null, `level-${r.level}`);
      const time = new Date(r.time);
      tr.append(el('td', isNaN(time) ? r.time || '' : time.toLocaleString(), 'mono'),
        el('td', r.service), el('td', r.level, 'level'), el('td', r.message, 'message'));
      return tr;
    }));
    const more = data.more ? ' (there are more: narrow the search)' : '';
    msg.textContent = `${records.length} records${more}`;
  } catch (e) {
    body.replaceChildren();
    msg.textContent = `logs unavailable (${e.status || 'error'}): ${errorText(e)}`;
  }
}

start();
