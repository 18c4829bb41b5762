// The embeddable widget on a page of another origin, in headless Chromium: English and Arabic
// chats, booking slots offered as buttons (keyboard and mouse), the handoff banner from the
// server's state, and a network drop during which a message is queued and then delivered once.
//
//   SWITCHBOARD_URL=http://127.0.0.1:8080 SWITCHBOARD_CHANNEL=<uuid> SWITCHBOARD_TOKEN=<admin token> \
//     node --test tests/browser/widget.test.mjs
//
// Needs a running Switchboard server with the demo tenant (its availability offers slots) and
// Chromium (/usr/bin/chromium, or the path in CHROMIUM). Serves the host page itself, from
// 127.0.0.1 on a port of its own. Writes tests/browser/screenshots/widget-*.png.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.SWITCHBOARD_URL || '').trim().replace(/\/+$/, '');
const CHANNEL = (process.env.SWITCHBOARD_CHANNEL || '').trim();
const TOKEN = (process.env.SWITCHBOARD_TOKEN || '').trim();
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const DEADLINE_MS = 20_000;
const HERE = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = path.join(HERE, 'screenshots');
const ARABIC_LETTERS = /[\u0600-\u06FF]/;

// ---------- the host page, on another origin ----------

function hostPage(lang) {
  const rtl = lang === 'ar';
  return `<!doctype html>
<html lang="${lang}" dir="${rtl ? 'rtl' : 'ltr'}">
<head><meta charset="utf-8"><title>${rtl ? 'متجر الطاقة' : 'Solar shop'}</title></head>
<body>
<h1>${rtl ? 'مرحبًا بكم في متجرنا' : 'Welcome to our shop'}</h1>
<p>${rtl ? 'هذه صفحة موقع آخر يضم أداة المحادثة.' : 'This page belongs to another site and embeds the chat widget.'}</p>
<script src="${BASE}/chat/widget.js" data-channel="${CHANNEL}" async></script>
</body>
</html>`;
}

async function startHost() {
  const server = http.createServer((req, res) => {
    const lang = req.url.startsWith('/ar') ? 'ar' : req.url.startsWith('/en') ? 'en' : null;
    if (!lang) { res.writeHead(404).end('not found'); return; }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(hostPage(lang));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

// ---------- the server's API, from Node (not affected by the browser going offline) ----------

async function api(method, urlPath, body) {
  const res = await fetch(`${BASE}${urlPath}`, {
    method,
    headers: { accept: 'application/json', authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  return { status: res.status, data };
}

async function serverHistory(session) {
  const r = await api('GET', `/api/v1/webchat/${CHANNEL}/sessions/${session}/messages`);
  assert.equal(r.status, 200, JSON.stringify(r.data));
  return r.data;
}

async function waitingEscalations() {
  const r = await api('GET', '/api/v1/escalations?tenant=demo&status=waiting');
  assert.equal(r.status, 200, JSON.stringify(r.data));
  return r.data.escalations;
}

// ---------- reading the chat inside the widget's frame ----------

function readBubbles(frame) {
  return frame.$$eval('[data-testid="msg"]', (els) =>
    els.map((e) => ({
      role: e.getAttribute('data-role'),
      id: e.getAttribute('data-id') || '',
      status: e.getAttribute('data-status') || '',
      text: e.textContent,
    })),
  );
}

function describe(bubbles) {
  return bubbles.map((b, i) => `  ${i + 1}. [${b.role}${b.status ? ' ' + b.status : ''}${b.id ? '' : ' no-id'}] ${JSON.stringify(b.text.slice(0, 90))}`).join('\n') || '  (no bubbles)';
}

async function waitUntil(frame, what, fn, arg) {
  try {
    await frame.waitForFunction(fn, arg, { timeout: DEADLINE_MS, polling: 100 });
  } catch (err) {
    let shown = '';
    try { shown = describe(await readBubbles(frame)); } catch { /* frame gone */ }
    throw new Error(`Timed out after ${DEADLINE_MS / 1000}s waiting for ${what}.\nBubbles in the widget:\n${shown}\n(${err.message.split('\n')[0]})`);
  }
}

// Waits for `n` agent bubbles in all.
function waitForAgents(frame, n, what) {
  return waitUntil(frame, what || `${n} agent replies`,
    (k) => document.querySelectorAll('[data-testid="msg"][data-role="agent"]').length >= k, n);
}

async function openWidget(page) {
  await page.getByRole('button', { name: /open chat/i }).click();
  let frame = null;
  const end = Date.now() + DEADLINE_MS;
  while (!frame && Date.now() < end) {
    frame = page.frames().find((f) => f.url().startsWith(`${BASE}/chat/`));
    if (!frame) await page.waitForTimeout(100);
  }
  assert.ok(frame, 'the widget opened no chat frame');
  await frame.waitForLoadState('domcontentloaded');
  await waitUntil(frame, 'the chat to connect', () => document.querySelector('[data-testid="chat-status"]')?.dataset.state === 'online');
  return frame;
}

async function say(frame, text) {
  const input = frame.getByTestId('chat-input');
  await input.fill(text);
  await input.press('Enter');
}

function sessionOf(frame, channel) {
  return frame.evaluate((c) => localStorage.getItem('switchboard.webchat.session.' + c), channel);
}

// The choice buttons of the newest offer.
function readChoices(frame) {
  return frame.$$eval('[data-testid="choices"]', (groups) => {
    const g = groups[groups.length - 1];
    if (!g) return null;
    return {
      dir: getComputedStyle(g).direction,
      count: groups.length,
      buttons: [...g.querySelectorAll('[data-testid="choice"]')].map((b) => {
        const r = b.getBoundingClientRect();
        return { tag: b.tagName, label: b.textContent, disabled: b.disabled, pressed: b.getAttribute('aria-pressed'), left: r.left, right: r.right, top: r.top };
      }),
    };
  });
}

// Where the chat's header is in its frame: 0 unless something scrolled the chat out of place.
function headerTop(frame) {
  return frame.evaluate(() => Math.round(document.querySelector('.header').getBoundingClientRect().top));
}

function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
      '--disable-quic', '--disable-component-update', '--disable-sync'],
  });
}

function checkEnv() {
  assert.ok(BASE, 'SWITCHBOARD_URL is not set (see the comment at the top of this file)');
  assert.ok(CHANNEL, 'SWITCHBOARD_CHANNEL is not set: the uuid of the demo web chat channel');
  assert.ok(TOKEN, 'SWITCHBOARD_TOKEN is not set: the admin token (to claim and hand back the conversation)');
}

test('widget on another origin: English chat, a booking slot chosen by keyboard, a network drop with a queued message, the handoff banner after reload', { timeout: 240_000 }, async (t) => {
  checkEnv();
  await mkdir(SHOTS, { recursive: true });
  const host = await startHost();
  const browser = await launch();
  const pageErrors = [];
  let page;
  let frame;
  try {
    const context = await browser.newContext({ viewport: { width: 1100, height: 860 }, locale: 'en-US' });
    page = await context.newPage();
    page.setDefaultTimeout(DEADLINE_MS);
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${host.origin}/en`, { waitUntil: 'domcontentloaded' });
    const pageOrigin = await page.evaluate(() => location.origin);
    assert.notEqual(pageOrigin, new URL(BASE).origin, 'the host page must be on another origin');

    frame = await openWidget(page);
    assert.equal(new URL(frame.url()).origin, new URL(BASE).origin);
    assert.equal(await frame.evaluate(() => document.documentElement.dir), 'ltr');
    t.diagnostic(`widget from ${new URL(BASE).origin} open on ${pageOrigin}`);

    // 1. A question in English.
    await say(frame, 'Hello! What solar panels do you offer for homes?');
    await waitForAgents(frame, 1, 'an answer to the English question');

    // 2. A meeting: the slots come as buttons under the offer.
    await say(frame, 'Can I book a consultation?');
    await waitForAgents(frame, 2, 'the booking offer');
    await waitUntil(frame, 'the offered slots as buttons', () => document.querySelectorAll('[data-testid="choice"]').length >= 2);
    const offered = await readChoices(frame);
    assert.equal(offered.dir, 'ltr');
    assert.ok(offered.buttons.every((b) => b.tag === 'BUTTON' && !b.disabled && b.pressed === 'false'), JSON.stringify(offered));
    assert.ok(await frame.$eval('#typing', (e) => e.hidden), 'the typing indicator hides with the reply');
    const pick = offered.buttons[0].label;
    t.diagnostic(`offered: ${offered.buttons.map((b) => b.label).join(' | ')}`);

    // Chosen with the keyboard: focus the button, press Enter.
    const first = frame.getByTestId('choice').first();
    await first.focus();
    assert.equal(await first.evaluate((b) => document.activeElement === b), true, 'a choice takes the keyboard focus');
    await first.press('Enter');
    await waitUntil(frame, 'the booking confirmation', (label) => {
      const all = [...document.querySelectorAll('[data-testid="msg"]')];
      const i = all.findIndex((e) => e.dataset.role === 'customer' && e.textContent === label);
      return i >= 0 && all.slice(i + 1).some((e) => e.dataset.role === 'agent' && e.textContent.startsWith("You're booked"));
    }, pick);
    const after = await readChoices(frame);
    assert.ok(after.buttons.every((b) => b.disabled), `every button is disabled after a choice: ${JSON.stringify(after)}`);
    assert.deepEqual(after.buttons.filter((b) => b.pressed === 'true').map((b) => b.label), [pick]);
    assert.equal(await headerTop(frame), 0, 'focusing a choice leaves the chat in place (header in view)');
    t.diagnostic(`booked ${pick} by keyboard`);

    // 3. The network drops; a message typed meanwhile waits, then goes once.
    const session = await sessionOf(frame, CHANNEL);
    assert.ok(session, 'the widget keeps a session id');
    const before = await readBubbles(frame);
    await context.setOffline(true);
    await waitUntil(frame, 'the chat to notice it is offline', () => navigator.onLine === false);
    const OFFLINE_TEXT = 'Do you offer financing?';
    await say(frame, OFFLINE_TEXT);
    await waitUntil(frame, 'the message to wait for the connection',
      (text) => [...document.querySelectorAll('[data-testid="msg"]')].some((e) => e.textContent === text && e.dataset.status === 'offline'), OFFLINE_TEXT);
    await page.waitForTimeout(1500);
    let server = await serverHistory(session);
    assert.equal(server.messages.filter((m) => m.text === OFFLINE_TEXT).length, 0, 'nothing reaches the server while offline');
    await context.setOffline(false);
    await waitUntil(frame, 'the queued message to be delivered and answered', ([text, n]) => {
      const all = [...document.querySelectorAll('[data-testid="msg"]')];
      const i = all.findIndex((e) => e.textContent === text);
      return i >= 0 && all[i].dataset.id && all[i].dataset.status === 'sent' && all.length >= n + 2
        && all.slice(i + 1).some((e) => e.dataset.role === 'agent');
    }, [OFFLINE_TEXT, before.length]);
    await waitUntil(frame, 'the stream to be back online', () => document.querySelector('[data-testid="chat-status"]')?.dataset.state === 'online');
    await page.waitForTimeout(1500); // room for a duplicate to show up before counting
    const now = await readBubbles(frame);
    assert.equal(now.filter((b) => b.text === OFFLINE_TEXT).length, 1, `the queued message is shown once:\n${describe(now)}`);
    assert.equal(now.length, before.length + 2, `one question and one answer after the drop:\n${describe(now)}`);
    assert.equal(new Set(now.map((b) => b.id)).size, now.length, `no duplicate bubbles:\n${describe(now)}`);
    server = await serverHistory(session);
    assert.equal(server.messages.filter((m) => m.text === OFFLINE_TEXT).length, 1, 'stored once');
    assert.deepEqual(now.map((b) => b.id), server.messages.map((m) => m.id), 'the widget shows exactly the server history');
    assert.ok(await frame.$eval('#typing', (e) => e.hidden), 'no typing indicator once answered');
    t.diagnostic('message queued offline was delivered once and answered once');

    // 4. Asking for a person: the banner comes from the server's state, also after a reload.
    await say(frame, 'I want to talk to a real person please');
    await waitUntil(frame, 'the handoff banner', () => {
      const b = document.querySelector('[data-testid="handoff-banner"]');
      return b && !b.hidden && b.textContent.includes('A colleague will reply');
    });
    await page.reload({ waitUntil: 'domcontentloaded' });
    frame = await openWidget(page);
    await waitUntil(frame, 'the handoff banner after reload', () => {
      const b = document.querySelector('[data-testid="handoff-banner"]');
      return b && !b.hidden && b.textContent.includes('A colleague will reply');
    });
    // The answered offer still shows which slot was chosen.
    const reloaded = await readChoices(frame);
    assert.ok(reloaded && reloaded.buttons.every((b) => b.disabled), JSON.stringify(reloaded));
    assert.deepEqual(reloaded.buttons.filter((b) => b.pressed === 'true').map((b) => b.label), [pick]);
    t.diagnostic('handoff banner shown, and again after reload');

    await page.screenshot({ path: path.join(SHOTS, 'widget-en.png') });
    assert.deepEqual(pageErrors, [], 'the host page threw JavaScript errors');
  } catch (err) {
    if (page) await page.screenshot({ path: path.join(SHOTS, 'widget-failure-en.png') }).catch(() => {});
    throw err;
  } finally {
    await browser.close();
    host.server.close();
  }
});

test('widget on an Arabic page: Arabic chat, right-to-left slot buttons, and the banner through waiting, a colleague and back', { timeout: 240_000 }, async (t) => {
  checkEnv();
  await mkdir(SHOTS, { recursive: true });
  const host = await startHost();
  const browser = await launch();
  let page;
  try {
    const context = await browser.newContext({ viewport: { width: 1100, height: 860 }, locale: 'ar' });
    page = await context.newPage();
    page.setDefaultTimeout(DEADLINE_MS);
    await page.goto(`${host.origin}/ar`, { waitUntil: 'domcontentloaded' });
    const button = page.getByRole('button', { name: /open chat/i });
    const box = await button.boundingBox();
    assert.ok(box.x < 1100 / 2, 'on a right-to-left page the widget button sits on the left');
    const frame = await openWidget(page);
    assert.equal(await frame.evaluate(() => document.documentElement.dir), 'rtl', 'the chat follows the page language');

    // 1. An Arabic question, an Arabic answer.
    await say(frame, 'ما هي ساعات العمل؟');
    await waitUntil(frame, 'an Arabic answer', (letters) => {
      const agents = [...document.querySelectorAll('[data-testid="msg"][data-role="agent"]')];
      return agents.length >= 1 && new RegExp(letters).test(agents[agents.length - 1].textContent);
    }, ARABIC_LETTERS.source);

    // 2. A meeting in Arabic: buttons laid out right to left, one clicked.
    await say(frame, 'أبغى أحجز موعد استشارة');
    await waitForAgents(frame, 2, 'the Arabic booking offer');
    await waitUntil(frame, 'the offered slots as buttons', () => document.querySelectorAll('[data-testid="choice"]').length >= 2);
    const offered = await readChoices(frame);
    assert.equal(offered.dir, 'rtl', 'the Arabic offer lays its buttons out right to left');
    const [a, b] = offered.buttons;
    assert.ok(ARABIC_LETTERS.test(a.label), `Arabic slot labels: ${a.label}`);
    if (a.top === b.top) assert.ok(a.right > b.right, `the first slot is the rightmost: ${JSON.stringify(offered.buttons)}`);
    const pick = b.label;
    await frame.getByTestId('choice').nth(1).click();
    await waitUntil(frame, 'the Arabic booking confirmation', (label) => {
      const all = [...document.querySelectorAll('[data-testid="msg"]')];
      const i = all.findIndex((e) => e.dataset.role === 'customer' && e.textContent === label);
      return i >= 0 && all.slice(i + 1).some((e) => e.dataset.role === 'agent' && e.textContent.startsWith('تم تأكيد موعدك'));
    }, pick);
    assert.ok((await readChoices(frame)).buttons.every((x) => x.disabled));
    assert.equal(await headerTop(frame), 0, 'pressing a choice leaves the chat in place (header in view)');
    t.diagnostic(`booked ${pick} with a click`);

    // 3. Asking for a person: "a colleague will reply".
    const known = new Set((await waitingEscalations()).map((e) => e.id));
    await say(frame, 'أريد التحدث مع موظف');
    await waitUntil(frame, 'the Arabic handoff banner', () => {
      const el = document.querySelector('[data-testid="handoff-banner"]');
      return el && !el.hidden && el.textContent.includes('سيرد عليك أحد زملائنا') && el.dataset.state === 'waiting';
    });
    assert.ok(await frame.$eval('#typing', (e) => e.hidden), 'no typing indicator while waiting for a colleague');
    const mine = (await waitingEscalations()).filter((e) => !known.has(e.id));
    assert.equal(mine.length, 1, JSON.stringify(mine));
    const conv = mine[0].conversation_id;

    // 4. A colleague takes over and writes: "you are chatting with …".
    let r = await api('POST', `/api/v1/conversations/${conv}/claim?tenant=demo`, {});
    assert.equal(r.status, 200, JSON.stringify(r.data));
    await waitUntil(frame, 'the "chatting with" banner', () => {
      const el = document.querySelector('[data-testid="handoff-banner"]');
      return el && !el.hidden && el.dataset.state === 'human' && el.textContent.includes('أنت تتحدث الآن مع');
    });
    r = await api('POST', `/api/v1/conversations/${conv}/messages?tenant=demo`, { text: 'مرحبًا، معك فريق المبيعات. كيف نساعدك؟', client_message_id: 'widget-test-1' });
    assert.ok(r.status === 202, JSON.stringify(r.data));
    await waitUntil(frame, "the colleague's message", () =>
      [...document.querySelectorAll('[data-testid="msg"][data-role="human"]')].some((e) => e.textContent.includes('معك فريق المبيعات')));
    await page.screenshot({ path: path.join(SHOTS, 'widget-ar.png') });

    // 5. Handed back: the banner goes away and the agent answers again.
    r = await api('POST', `/api/v1/conversations/${conv}/handback?tenant=demo`, {});
    assert.equal(r.status, 200, JSON.stringify(r.data));
    await waitUntil(frame, 'the banner to go when handed back', () => {
      const el = document.querySelector('[data-testid="handoff-banner"]');
      return el && el.hidden && el.dataset.state === 'bot';
    });
    const agentsBefore = await frame.$$eval('[data-testid="msg"][data-role="agent"]', (e) => e.length);
    await say(frame, 'كم تستغرق مدة التركيب؟');
    await waitForAgents(frame, agentsBefore + 1, 'the agent to answer again after the hand-back');
    const bubbles = await readBubbles(frame);
    assert.equal(new Set(bubbles.map((x) => x.id)).size, bubbles.length, `no duplicate bubbles:\n${describe(bubbles)}`);
    t.diagnostic('banner: waiting → chatting with a colleague → gone after hand-back');
  } catch (err) {
    if (page) await page.screenshot({ path: path.join(SHOTS, 'widget-failure-ar.png') }).catch(() => {});
    throw err;
  } finally {
    await browser.close();
    host.server.close();
  }
});
