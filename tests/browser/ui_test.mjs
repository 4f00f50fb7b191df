#!/usr/bin/env node
// Browser test of the plantd web UI (web-api/ui), with no dependency beyond Node 20: it starts
// /usr/bin/chromedriver, drives headless /usr/bin/chromium through the W3C WebDriver HTTP
// protocol, and checks login, live service health, a state edit, a live update made by another
// writer, and the version-conflict message for a stale editor.
//
//   node tests/browser/ui_test.mjs --url http://127.0.0.1:PORT --user USER --password PASS \
//        --scope SCOPE --key KEY --shots DIR [--no-login]
//
// Stdout carries one marker line per step, for the Rust harness driving it:
//   SERVICES-HEALTHY, EDITED <value>, READY-FOR-CLI-WRITE (then it waits for the line
//   `WRITTEN <value>` on stdin: the harness runs `plant state set SCOPE KEY <value>`),
//   LIVE <value> <ms>ms, CONFLICT-SHOWN, DONE.
// Progress goes to stderr. Screenshots 01-login, 02-services, 03-edited, 04-conflict (and
// 99-failure on error) land in --shots. Every wait is bounded; exit 0 on success, 1 on failure.
// Chromium and chromedriver come from Debian (deploy/install-deps.sh installs them).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const CHROMIUM = '/usr/bin/chromium';
const CHROMEDRIVER = '/usr/bin/chromedriver';
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf'; // the W3C element reference key
const OVERALL_MS = 120_000;

// ---- arguments ----------------------------------------------------------------------------

function parseArgs(argv) {
  const args = { login: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-login') { args.login = false; continue; }
    const m = /^--(url|user|password|scope|key|shots)$/.exec(a);
    if (!m || i + 1 >= argv.length) throw new Error(`unknown or incomplete argument ${a}`);
    args[m[1]] = argv[++i];
  }
  const needed = ['url', 'scope', 'key', 'shots', ...(args.login ? ['user', 'password'] : [])];
  const missing = needed.filter((n) => !args[n]);
  if (missing.length) throw new Error(`missing --${missing.join(', --')}`);
  args.url = args.url.replace(/\/+$/, '');
  return args;
}

// ---- small helpers ------------------------------------------------------------------------

const log = (...parts) => console.error('ui_test:', ...parts);
const mark = (line) => process.stdout.write(`${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** CSS attribute value in double quotes. */
const cssString = (s) => `"${String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\a ')}"`;

/** An error that ends a wait at once (the page showed a failure: waiting longer cannot help). */
class Fatal extends Error {}

/** Polls `check` every 100 ms until it returns a truthy value, for at most `ms`. */
async function waitFor(what, ms, check) {
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      if (e instanceof Fatal) throw e;
      last = ` (last error: ${e.message})`;
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last}`);
    await sleep(100);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Lines of stdin, read on demand: next(prefix, ms) resolves to the first line with `prefix`. */
function stdinLines() {
  const queue = [];
  let waiter = null;
  let ended = false;
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => { queue.push(line.trim()); if (waiter) waiter(); });
  rl.on('close', () => { ended = true; if (waiter) waiter(); });
  return {
    async next(prefix, ms) {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = queue.findIndex((l) => l.startsWith(prefix));
        if (i >= 0) return queue.splice(i, 1)[0];
        if (ended) throw new Error(`stdin closed before a line "${prefix}…" came`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for "${prefix}…" on stdin`);
        await new Promise((r) => { waiter = r; setTimeout(r, Math.min(left, 500)); });
        waiter = null;
      }
    },
    close() { rl.close(); },
  };
}

// ---- WebDriver ----------------------------------------------------------------------------

class WebDriver {
  constructor(base) { this.base = base; this.session = null; }

  async call(method, route, body, ms = 15_000) {
    const url = `${this.base}${route}`;
    let res;
    try {
      res = await fetch(url, {
        method,
        headers: body ? { 'Content-Type': 'application/json' } : {},
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(ms),
      });
    } catch (e) {
      const why = e.name === 'TimeoutError' ? `no answer in ${ms} ms` : e.message;
      throw new Error(`webdriver ${method} ${route}: ${why}`);
    }
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = { value: text }; }
    if (!res.ok) {
      const v = json.value || {};
      const first = (v.message || text).split('\n')[0];
      throw new Error(`webdriver ${method} ${route}: ${res.status} ${v.error || ''} ${first}`);
    }
    return json.value;
  }

  s(route) { return `/session/${this.session}${route}`; }

  async start(profile) {
    const value = await this.call('POST', '/session', {
      capabilities: {
        alwaysMatch: {
          browserName: 'chrome',
          'goog:chromeOptions': {
            binary: CHROMIUM,
            args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync',
              '--disable-dev-shm-usage', '--window-size=1280,900', `--user-data-dir=${profile}`],
          },
        },
      },
    }, 30_000);
    this.session = value.sessionId;
    await this.call('POST', this.s('/timeouts'), { implicit: 0, pageLoad: 20_000, script: 10_000 });
  }

  open(url) { return this.call('POST', this.s('/url'), { url }, 25_000); }

  async find(css) {
    const v = await this.call('POST', this.s('/element'), { using: 'css selector', value: css });
    return v[ELEMENT];
  }

  async findAll(css) {
    const v = await this.call('POST', this.s('/elements'), { using: 'css selector', value: css });
    return v.map((e) => e[ELEMENT]);
  }

  async text(css) { return this.call('GET', this.s(`/element/${await this.find(css)}/text`)); }
  textOf(id) { return this.call('GET', this.s(`/element/${id}/text`)); }
  async click(css) { await this.call('POST', this.s(`/element/${await this.find(css)}/click`), {}); }

  async type(css, text, clear = true) {
    const id = await this.find(css);
    if (clear) await this.call('POST', this.s(`/element/${id}/clear`), {});
    await this.call('POST', this.s(`/element/${id}/value`), { text });
  }

  async screenshot(dir, name) {
    const b64 = await this.call('GET', this.s('/screenshot'), undefined, 20_000);
    fs.writeFileSync(path.join(dir, name), Buffer.from(b64, 'base64'));
    log(`screenshot ${name}`);
  }

  async quit() {
    if (!this.session) return;
    const id = this.session;
    this.session = null;
    await this.call('DELETE', `/session/${id}`, undefined, 10_000);
  }
}

// ---- the test -----------------------------------------------------------------------------

async function run(args, wd, stdin) {
  const rowSel = `tr[data-key=${cssString(args.key)}]`;

  log(`open ${args.url}`);
  try {
    await fetch(`${args.url}/`, { signal: AbortSignal.timeout(5_000) });
  } catch (e) {
    throw new Error(`the web UI at ${args.url} does not answer: ${e.cause ? e.cause.message : e.message}`);
  }
  await wd.open(`${args.url}/`);
  if (args.login) {
    await waitFor('the login form', 10_000, () => wd.find('#login-username'));
    await waitFor('a visible login form', 10_000, async () => (await wd.text('#login-submit')) !== '');
    await wd.type('#login-username', args.user);
    await wd.type('#login-password', args.password);
    await wd.screenshot(args.shots, '01-login.png');
    await wd.click('#login-submit');
  } else {
    await wd.screenshot(args.shots, '01-login.png');
  }
  const who = args.user || '';
  await waitFor(`#whoami to show ${who || 'a user'}`, 10_000, async () => {
    const t = await wd.text('#whoami');
    if (!t && args.login) {
      const err = await wd.text('#login-error').catch(() => '');
      if (err) throw new Fatal(`login refused: ${err}`);
    }
    return t && t.includes(who);
  });
  log(`logged in: ${await wd.text('#whoami')}`);

  // Services: both echo and state report healthy (live, from the health SSE).
  await wd.click('#nav-services');
  await waitFor('echo and state healthy in #services-table', 15_000, async () => {
    for (const name of ['echo', 'state']) {
      const cells = await wd.findAll(`#services-table tr[data-service=${cssString(name)}] .health`);
      if (!cells.length) return false;
      for (const cell of cells) if ((await wd.textOf(cell)).trim().split(/\s/)[0] !== 'healthy') return false;
    }
    return true;
  });
  mark('SERVICES-HEALTHY');
  // Live stats: the request counters of state fill in from its $SRV.STATS (polled every 2 s).
  await waitFor('request counters of state in #services-table', 10_000, async () => {
    const cells = await wd.findAll(`#services-table tr[data-service=${cssString('state')}] .requests`);
    if (!cells.length) return false;
    for (const cell of cells) if (!/^\d+$/.test((await wd.textOf(cell)).trim())) return false;
    return true;
  });
  log('state request counters shown');
  await wd.screenshot(args.shots, '02-services.png');

  // State: open the scope, edit the key, see the new value in its row.
  await wd.click('#nav-state');
  await wd.type('#scope-input', args.scope);
  await wd.click('#scope-open');
  await waitFor(`the row of ${args.key}`, 10_000, () => wd.find(rowSel));
  const edited = `from-browser-${Date.now()}`;
  await openEditor(wd, rowSel, args.key);
  await wd.type('#edit-value', edited);
  await wd.click('#edit-save');
  await waitFor('"saved" in #edit-message', 10_000, async () => {
    const t = await wd.text('#edit-message');
    if (t && !t.startsWith('saved')) throw new Fatal(`save failed: ${t}`);
    return t.startsWith('saved');
  });
  const rowValue = () => wd.text(`${rowSel} .value`);
  await waitFor(`the row to show ${edited}`, 10_000, async () => (await rowValue()) === edited);
  mark(`EDITED ${edited}`);
  await wd.screenshot(args.shots, '03-edited.png');

  // Conflict: an editor opened before another writer's change must refuse to overwrite it.
  await openEditor(wd, rowSel, args.key);
  mark('READY-FOR-CLI-WRITE');
  const line = await stdin.next('WRITTEN ', 60_000);
  const t0 = Date.now();
  const written = line.slice('WRITTEN '.length);
  await waitFor(`the row to show ${written} live`, 3_000, async () => (await rowValue()) === written);
  mark(`LIVE ${written} ${Date.now() - t0}ms`);
  await wd.type('#edit-value', `stale-${Date.now()}`);
  await wd.click('#edit-save');
  await waitFor('"conflict" in #edit-message', 5_000,
    async () => (await wd.text('#edit-message')).includes('conflict'));
  const shown = await rowValue();
  if (shown !== written) throw new Error(`after the conflict the row shows ${shown}, not ${written}`);
  mark('CONFLICT-SHOWN');
  log(`edit message: ${await wd.text('#edit-message')}`);
  await wd.screenshot(args.shots, '04-conflict.png');
}

/** Clicks the row's edit button and waits until the editor shows that key at the row's version. */
async function openEditor(wd, rowSel, key) {
  const version = (await wd.text(`${rowSel} .version`)).trim();
  await wd.click(`${rowSel} button.edit`);
  await waitFor(`the editor on ${key}`, 5_000, async () => {
    const title = await wd.text('#edit-title');
    const msg = await wd.text('#edit-message');
    return title.includes(key) && (!version || title.includes(`(version ${version})`)) && msg === '';
  });
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`ui_test: ${e.message}\nusage: node tests/browser/ui_test.mjs --url URL --user USER ` +
      '--password PASS --scope SCOPE --key KEY --shots DIR [--no-login]');
    process.exit(1);
  }
  for (const bin of [CHROMIUM, CHROMEDRIVER]) {
    if (!fs.existsSync(bin)) {
      console.error(`ui_test: FAIL: ${bin} is missing (install it with: bash deploy/install-deps.sh)`);
      process.exit(1);
    }
  }
  fs.mkdirSync(args.shots, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'plantd-ui-test-'));
  const stdin = stdinLines();
  let driver = null;
  let driverLog = '';
  let wd = null;
  let failed = null;

  const cleanup = async () => {
    if (wd && wd.session) await wd.quit().catch((e) => log(`delete session: ${e.message}`));
    if (driver && driver.exitCode === null) {
      // chromedriver runs in its own process group: end it and any browser it left.
      try { process.kill(-driver.pid, 'SIGTERM'); } catch { /* gone */ }
      const gone = await Promise.race([new Promise((r) => driver.once('exit', () => r(true))), sleep(3000)]);
      if (!gone) try { process.kill(-driver.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    fs.rmSync(profile, { recursive: true, force: true });
    stdin.close();
  };
  const onSignal = async (sig) => { log(`${sig}: stopping`); await cleanup(); process.exit(1); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const port = await freePort();
    driver = spawn(CHROMEDRIVER, [`--port=${port}`], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk) => { driverLog = (driverLog + chunk).slice(-4000); };
    driver.stdout.on('data', keep);
    driver.stderr.on('data', keep);
    wd = new WebDriver(`http://127.0.0.1:${port}`);
    await waitFor('chromedriver /status ready', 10_000, async () => {
      if (driver.exitCode !== null) {
        throw new Error(`chromedriver exited (${driver.exitCode}): ${driverLog.trim()}`);
      }
      return (await wd.call('GET', '/status', undefined, 1_000)).ready;
    });
    await wd.start(profile);
    log(`chromium session ${wd.session}`);
    const overall = new Promise((_, reject) => {
      setTimeout(() => reject(new Error(`the whole test took over ${OVERALL_MS} ms`)), OVERALL_MS).unref();
    });
    await Promise.race([run(args, wd, stdin), overall]);
  } catch (e) {
    failed = e;
  }
  if (failed && wd && wd.session) {
    await wd.screenshot(args.shots, '99-failure.png').catch((e) => log(`failure screenshot: ${e.message}`));
    const status = await wd.text('#status').catch(() => '');
    if (status) log(`the page's #status says: ${status}`);
  }
  await cleanup();
  if (failed) {
    console.error(`ui_test: FAIL: ${failed.message}`);
    process.exit(1);
  }
  mark('DONE');
  process.exit(0);
}

main();
