// End-to-end test of the Switchboard web chat in headless Chromium.
//
//   SWITCHBOARD_URL=http://127.0.0.1:8080 SWITCHBOARD_CHANNEL=<uuid> node --test tests/browser/chat.test.mjs
//
// Needs a running Switchboard server whose channel answers messages, and Chromium
// (/usr/bin/chromium, or the path in CHROMIUM). Writes tests/browser/screenshots/chat.png.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.SWITCHBOARD_URL || '').trim().replace(/\/+$/, '');
const CHANNEL = (process.env.SWITCHBOARD_CHANNEL || '').trim();
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const DEADLINE_MS = 20_000;
const HERE = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = path.join(HERE, 'screenshots');

const ENGLISH_QUESTION = 'Hello! What solar panels do you offer for homes?';
const ARABIC_QUESTION = 'ما هي ساعات العمل؟';
const ARABIC_LETTERS = /[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]/;

// Every bubble on the page, in display order.
function readBubbles(page) {
  return page.$$eval('[data-testid="msg"]', (els) =>
    els.map((e) => ({
      role: e.getAttribute('data-role'),
      id: e.getAttribute('data-id') || '',
      status: e.getAttribute('data-status') || '',
      text: e.textContent,
    })),
  );
}

function describe(bubbles) {
  return bubbles.map((b, i) => `  ${i + 1}. [${b.role}${b.status ? ' ' + b.status : ''}] ${JSON.stringify(b.text.slice(0, 80))}`).join('\n') || '  (no bubbles)';
}

// Polls the page until fn(arg) is truthy, for at most DEADLINE_MS; fails with what the page shows.
async function waitUntil(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: DEADLINE_MS, polling: 100 });
  } catch (err) {
    let shown = '';
    try { shown = describe(await readBubbles(page)); } catch { /* page gone */ }
    throw new Error(`Timed out after ${DEADLINE_MS / 1000}s waiting for ${what}.\nBubbles on the page:\n${shown}\n(${err.message.split('\n')[0]})`);
  }
}

async function fetchChannel() {
  const url = `${BASE}/api/v1/webchat/${encodeURIComponent(CHANNEL)}`;
  let res;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' } });
  } catch (err) {
    assert.fail(`Cannot reach the Switchboard server at ${BASE} (${err.cause?.code || err.message}). Is it running?`);
  }
  const body = await res.text();
  assert.equal(res.status, 200, `GET ${url} answered ${res.status}: ${body.slice(0, 300)}`);
  const channel = JSON.parse(body);
  assert.equal(typeof channel.tenant_name, 'string', `GET ${url} has no tenant_name: ${body.slice(0, 300)}`);
  return channel;
}

test('web chat: English and Arabic questions get answers, and history survives a reload', { timeout: 180_000 }, async (t) => {
  assert.ok(BASE, 'SWITCHBOARD_URL is not set. Start a Switchboard server and run e.g. '
    + 'SWITCHBOARD_URL=http://127.0.0.1:8080 SWITCHBOARD_CHANNEL=<channel-uuid> node --test tests/browser/chat.test.mjs');
  assert.ok(CHANNEL, 'SWITCHBOARD_CHANNEL is not set: give the uuid of a web chat channel on the server at ' + BASE);
  assert.match(BASE, /^https?:\/\//, `SWITCHBOARD_URL must start with http:// or https:// (got ${JSON.stringify(BASE)})`);

  const channel = await fetchChannel();
  await mkdir(SHOTS, { recursive: true });

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const pageErrors = [];
  let page;
  try {
    const context = await browser.newContext({ viewport: { width: 480, height: 860 }, deviceScaleFactor: 1, locale: 'en-US' });
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.setDefaultTimeout(DEADLINE_MS);

    // 1. The page loads and shows the tenant's name.
    const chatUrl = `${BASE}/chat/${encodeURIComponent(CHANNEL)}`;
    const resp = await page.goto(chatUrl, { waitUntil: 'domcontentloaded' });
    assert.ok(resp && resp.ok(), `GET ${chatUrl} answered ${resp && resp.status()}`);
    await waitUntil(page, `the title to show ${JSON.stringify(channel.tenant_name)}`,
      (name) => document.querySelector('[data-testid="chat-title"]')?.textContent.trim() === name, channel.tenant_name);
    assert.equal((await readBubbles(page)).length, 0, 'a fresh session should start with no messages');
    t.diagnostic(`title shows ${channel.tenant_name}`);

    // 2. English question, sent with Enter; wait for the agent's answer.
    const input = page.getByTestId('chat-input');
    await input.fill(ENGLISH_QUESTION);
    await input.press('Enter');
    await waitUntil(page, 'an agent reply to the English question', () => {
      const all = [...document.querySelectorAll('[data-testid="msg"]')];
      return all.length >= 2 && all[0].dataset.role === 'customer' && all.slice(1).some((e) => e.dataset.role === 'agent');
    });
    assert.equal(await input.inputValue(), '', 'the input should be cleared after sending');
    t.diagnostic('agent answered the English question');

    // 3. Arabic question, sent with the button; wait for an answer in Arabic.
    await input.fill(ARABIC_QUESTION);
    await page.getByTestId('chat-send').click();
    await waitUntil(page, 'a second agent reply, in Arabic, to the Arabic question', ([question, letters]) => {
      const all = [...document.querySelectorAll('[data-testid="msg"]')];
      const re = new RegExp(letters);
      const asked = all.findIndex((e) => e.dataset.role === 'customer' && e.textContent.trim() === question);
      const agents = all.filter((e) => e.dataset.role === 'agent');
      return asked >= 0 && agents.length >= 2
        && all.slice(asked + 1).some((e) => e.dataset.role === 'agent' && re.test(e.textContent));
    }, [ARABIC_QUESTION, ARABIC_LETTERS.source]);
    t.diagnostic('agent answered the Arabic question in Arabic');

    // Every bubble is confirmed by the server (has its message id) before we reload.
    await waitUntil(page, 'every bubble to be confirmed by the server', () =>
      [...document.querySelectorAll('[data-testid="msg"]')].every((e) => e.dataset.id && e.dataset.status !== 'failed'));
    const before = await readBubbles(page);
    const customers = before.filter((b) => b.role === 'customer');
    assert.deepEqual(customers.map((b) => b.text), [ENGLISH_QUESTION, ARABIC_QUESTION],
      `expected exactly the two questions as customer bubbles, got:\n${describe(before)}`);
    assert.ok(before.length >= 4, `expected at least 4 bubbles before reload, got:\n${describe(before)}`);
    if (before.length !== 4) t.diagnostic(`note: ${before.length} bubbles (the agent sent more than one reply per question)`);
    const ids = before.map((b) => b.id);
    assert.equal(new Set(ids).size, ids.length, `duplicate bubbles before reload:\n${describe(before)}`);
    const agentBubbles = before.filter((b) => b.role === 'agent');
    assert.ok(ARABIC_LETTERS.test(agentBubbles[agentBubbles.length - 1].text), 'the last agent reply should be in Arabic');

    // 4. Reload: the same conversation comes back from history, once, and the live stream adds nothing twice.
    await page.reload({ waitUntil: 'domcontentloaded' });
    await waitUntil(page, `the ${before.length} bubbles to come back after reload`,
      (n) => document.querySelectorAll('[data-testid="msg"]').length >= n, before.length);
    await waitUntil(page, 'the live stream to reconnect after reload',
      () => document.querySelector('[data-testid="chat-status"]')?.dataset.state === 'online');
    const after = await readBubbles(page);
    assert.deepEqual(after.map(({ role, id, text }) => ({ role, id, text })), before.map(({ role, id, text }) => ({ role, id, text })),
      `history after reload differs.\nBefore:\n${describe(before)}\nAfter:\n${describe(after)}`);
    const rtl = await page.evaluate(() => {
      const agents = [...document.querySelectorAll('[data-testid="msg"][data-role="agent"]')];
      return getComputedStyle(agents[agents.length - 1]).direction;
    });
    assert.equal(rtl, 'rtl', 'the Arabic reply should be laid out right-to-left');
    t.diagnostic(`history has ${after.length} bubbles after reload, no duplicates`);

    await page.screenshot({ path: path.join(SHOTS, 'chat.png'), animations: 'disabled' });
    t.diagnostic(`screenshot: ${path.join(SHOTS, 'chat.png')}`);
    assert.deepEqual(pageErrors, [], 'the page threw JavaScript errors');
  } catch (err) {
    if (page) await page.screenshot({ path: path.join(SHOTS, 'failure.png') }).catch(() => {});
    throw err;
  } finally {
    await browser.close();
  }
});
