// What the console's browser tests share: the server they run against (from the environment
// scripts/browser-test.sh sets), its API with the admin token, the demo web chat, Chromium, and
// browser contexts that refuse every other origin and fail the test on script errors or CSP
// violations.

import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export const BASE = (process.env.SWITCHBOARD_URL || '').trim().replace(/\/+$/, '');
export const TOKEN = (process.env.SWITCHBOARD_TOKEN || '').trim();
export const CHANNEL = (process.env.SWITCHBOARD_CHANNEL || '').trim();
export const PASSWORD = process.env.SWITCHBOARD_CONSOLE_PASSWORD || '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const DEADLINE = 30_000;

/** The people scripts/browser-test.sh makes with `switchboard user create`, by role. */
export const PEOPLE = {
  platform_admin: 'root@console.example',
  tenant_admin: 'admin@console.example',
  sales_agent: 'agent@console.example',
  viewer: 'viewer@console.example',
};

export function requireEnv() {
  assert.ok(BASE && TOKEN && CHANNEL && PASSWORD, 'SWITCHBOARD_URL, _TOKEN, _CHANNEL and _CONSOLE_PASSWORD are set');
}

export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
      '--disable-quic', '--disable-component-update', '--disable-sync'],
  });
}

/** The API with the admin token, for tenant demo, as it answers. */
export function raw(method, p, body) {
  const sep = p.includes('?') ? '&' : '?';
  return fetch(`${BASE}/api/v1${p}${sep}tenant=demo`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** The API with the admin token, for tenant demo; fails the test on an error status. */
export async function admin(method, p, body) {
  const r = await raw(method, p, body);
  const text = await r.text();
  assert.ok(r.ok, `${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A customer's message to the demo web chat. */
export async function chat(session, text) {
  const r = await fetch(`${BASE}/api/v1/webchat/${CHANNEL}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ session_id: session, client_message_id: `m-${Date.now()}-${Math.random()}`, text }),
  });
  const answer = await r.text();
  assert.equal(r.status, 202, answer);
  return JSON.parse(answer);
}

export async function history(session) {
  const r = await fetch(`${BASE}/api/v1/webchat/${CHANNEL}/sessions/${session}/messages`);
  return (await r.json()).messages || [];
}

export async function eventually(what, f, deadline = DEADLINE) {
  const end = Date.now() + deadline;
  let last;
  while (Date.now() < end) {
    last = await f();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`timed out waiting for ${what}`);
}

export function session(prefix = 'console') { return `${prefix}-${crypto.randomUUID()}`; }

/** A browser context that refuses every other origin and collects page errors; checked and
 * closed when the test `t` ends. The console starts in `lang`. */
export async function open(browser, t, { width = 1280, height = 860, lang = 'en' } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, locale: lang === 'ar' ? 'ar' : 'en-US' });
  const foreign = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${BASE}/`) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    foreign.push(url);
    return route.abort('internetdisconnected');
  });
  // The language the console starts in (it remembers the choice in localStorage).
  await context.addInitScript((l) => { try { if (!localStorage.getItem('sb.console.lang')) localStorage.setItem('sb.console.lang', l); } catch { /* */ } }, lang);
  const page = await context.newPage();
  page.setDefaultTimeout(DEADLINE);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy|Refused/.test(m.text())) errors.push(m.text()); });
  page.on('dialog', (d) => d.accept());
  t.after(async () => {
    assert.deepEqual(foreign, [], 'no request left the server');
    assert.deepEqual(errors, [], 'no script error, no CSP violation');
    await context.close();
  });
  return page;
}

/** Signs `role`'s person in through the form (in either language). */
export async function signIn(page, role) {
  await page.goto(`${BASE}/console#/signin`);
  await page.getByLabel(/^(Email|البريد الإلكتروني)$/).fill(PEOPLE[role]);
  await page.getByLabel(/^(Password|كلمة المرور)$/).fill(PASSWORD);
  await page.locator('form button[type=submit]').click();
  await page.waitForSelector('nav#nav a');
}
