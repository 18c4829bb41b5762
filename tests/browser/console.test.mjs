// The console (/console) in headless Chromium against the real binary, with every request to
// another origin refused: each role signs in and sees only its pages and actions; a prompt is
// edited, tried in the playground and published, and the agent then answers with it; a document
// is uploaded, indexed and found in the search console; an escalation arrives live in the inbox
// and is taken over, answered and handed back; an Arabic conversation end to end with the console
// in Arabic; the inbox by keyboard alone. Prints each page's first contentful paint and saves
// screenshots of every page in English and Arabic (tests/browser/screenshots/console-*.png).
//
//   SWITCHBOARD_URL=http://127.0.0.1:8080 SWITCHBOARD_TOKEN=<admin token> SWITCHBOARD_CHANNEL=<web chat id> \
//   SWITCHBOARD_CONSOLE_PASSWORD=<password of root@, admin@, agent@, viewer@console.example> \
//     node --test tests/browser/console.test.mjs
//
// scripts/browser-test.sh makes those four people with `switchboard user create`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BASE, TOKEN, CHANNEL, PASSWORD, DEADLINE, PEOPLE, requireEnv, launch, admin, chat, history,
  eventually, session, open as openContext, signIn,
} from './console-helpers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = path.join(HERE, 'screenshots');

const READ_PAGES = ['inbox', 'escalations', 'bookings', 'leads', 'analytics'];
const ADMIN_PAGES = ['prompts', 'knowledge', 'channels', 'users', 'keys', 'audit'];
const NAV = {
  viewer: READ_PAGES,
  sales_agent: READ_PAGES,
  tenant_admin: [...READ_PAGES, ...ADMIN_PAGES],
  platform_admin: [...READ_PAGES, ...ADMIN_PAGES, 'tenants'],
};

let browser;
const paints = [];
const open = (t, opts) => openContext(browser, t, opts);

async function navRoutes(page) {
  return page.$$eval('nav#nav a', (as) => as.map((a) => a.dataset.route));
}

/** Loads `#/route` afresh and returns its first contentful paint in ms (navigation start = 0). */
async function firstPaint(page, route, ready) {
  // A query makes it a real page load, not a same-document hash change.
  await page.goto(`${BASE}/console?fresh=${Date.now()}#/${route}`, { waitUntil: 'load' });
  await page.waitForSelector(ready);
  return page.evaluate(() => {
    const p = performance.getEntriesByName('first-contentful-paint')[0];
    return p ? Math.round(p.startTime) : null;
  });
}

before(async () => {
  requireEnv();
  await mkdir(SHOTS, { recursive: true });
  browser = await launch();
});

after(async () => {
  if (paints.length) {
    const lines = paints.map((p) => `  ${p.lang} ${p.route.padEnd(12)} ${p.fcp} ms, layout shift ${p.cls}`).join('\n');
    console.log(`# first contentful paint and layout shift per console page (local binary):\n${lines}`);
  }
  await browser?.close();
});

test('each role sees only its pages and actions; every page in English and Arabic, with its first paint', { timeout: 240_000 }, async (t) => {
  for (const role of ['viewer', 'sales_agent', 'tenant_admin', 'platform_admin']) {
    const page = await open(t);
    await signIn(page, role);
    assert.deepEqual(await navRoutes(page), NAV[role], `${role}: navigation`);
    // A page the role may not open says so instead of drawing it.
    if (role !== 'platform_admin') {
      await page.goto(`${BASE}/console#/tenants`);
      await page.waitForSelector('main p.empty');
    }
    if (role === 'viewer' || role === 'sales_agent') {
      await page.goto(`${BASE}/console#/prompts`);
      await page.waitForSelector('main p.empty');
    }
    // Action buttons: viewers read only.
    await page.goto(`${BASE}/console#/inbox`);
    await page.waitForSelector('#conv-list');
    if (role === 'viewer') {
      await page.waitForSelector('main p.notice');
      assert.equal(await page.locator('input[name=mine]').count(), 0, 'viewer: no "assigned to me" filter');
    }
    const first = page.locator('#conv-list button.conv').first();
    if (await first.count()) {
      await first.click();
      await page.waitForSelector('#transcript-title');
      const actions = await page.locator('#conversation-actions button').count();
      const composer = await page.locator('#composer').isVisible();
      if (role === 'viewer') {
        assert.equal(actions, 0, 'viewer: no action in a conversation');
        assert.equal(composer, false, 'viewer: no reply box');
      } else {
        assert.ok(actions > 0 || !composer, `${role}: acts on conversations`);
      }
    }
    if (role === 'sales_agent') {
      await page.goto(`${BASE}/console#/bookings`);
      await page.waitForSelector('#week .day h3');
      assert.equal(await page.locator('#save-availability').count(), 0, 'agents do not edit the availability');
    }
    if (role === 'tenant_admin') {
      await page.goto(`${BASE}/console#/bookings`);
      await page.waitForSelector('#save-availability');
    }
    if (role === 'platform_admin') {
      // Screenshots of every page in both languages, and each page's first paint.
      for (const lang of ['en', 'ar']) {
        if (lang === 'ar') {
          await page.goto(`${BASE}/console#/inbox`);
          await page.locator('#lang-switch').click();
          await page.waitForFunction(() => document.documentElement.dir === 'rtl' && document.documentElement.lang === 'ar');
        }
        for (const route of NAV.platform_admin) {
          const fcp = await firstPaint(page, route, 'main h1');
          await page.waitForFunction(() => !document.querySelector('main [aria-busy="true"]'), null, { timeout: 10_000 }).catch(() => {});
          // Layout shift while the page's data loaded (Cumulative Layout Shift of the load).
          const cls = await page.evaluate(() => new Promise((resolve) => {
            let sum = 0;
            new PerformanceObserver((list) => {
              for (const e of list.getEntries()) if (!e.hadRecentInput) sum += e.value;
            }).observe({ type: 'layout-shift', buffered: true });
            setTimeout(() => resolve(Math.round(sum * 1000) / 1000), 200);
          }));
          paints.push({ lang, route, fcp, cls });
          assert.equal(await page.evaluate(() => document.documentElement.dir), lang === 'ar' ? 'rtl' : 'ltr');
          // Every control has a label, every button a name, every text input dir=auto.
          const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter((e) => !e.closest('[hidden]'))
            .filter((e) => {
              if (e.tagName === 'BUTTON') return !(e.textContent.trim() || e.getAttribute('aria-label'));
              return !((e.labels && e.labels.length) || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby'));
            })
            .map((e) => e.outerHTML.slice(0, 80)));
          assert.deepEqual(unlabelled, [], `${route}: controls without a label`);
          const noDir = await page.evaluate(() => [...document.querySelectorAll('main textarea, main input:not([type]), main input[type=text], main input[type=search]')]
            .filter((e) => !e.hasAttribute('dir')).map((e) => e.outerHTML.slice(0, 80)));
          assert.deepEqual(noDir, [], `${route}: text inputs without dir`);
          await page.screenshot({ path: path.join(SHOTS, `console-${route}-${lang}.png`), fullPage: true });
        }
      }
      await page.locator('#lang-switch').click();
      await page.waitForFunction(() => document.documentElement.dir === 'ltr');
      // Analytics draws its charts as inline SVG.
      await page.goto(`${BASE}/console#/analytics`);
      await page.waitForSelector('#charts figure.chart svg polyline', { state: 'attached' });
      assert.notEqual((await page.locator('#kpis .kpi .v').first().innerText()).trim(), '—', 'totals are shown');
      // Every page at 360 px wide: nothing wider than the screen (wide tables scroll in their box),
      // even with a web-chat session id (one long unbroken word) as a customer's name.
      await chat(`ws_${'0123456789abcdef'.repeat(2)}${Date.now()}`, 'A customer with a long unbroken id');
      await page.setViewportSize({ width: 360, height: 740 });
      const wide = [];
      for (const route of NAV.platform_admin) {
        await page.goto(`${BASE}/console?narrow=${Date.now()}#/${route}`);
        await page.waitForSelector('main h1');
        await page.waitForFunction(() => !document.querySelector('main [aria-busy="true"]'), null, { timeout: 10_000 }).catch(() => {});
        const width = await page.evaluate(() => document.documentElement.scrollWidth);
        if (width > 361) wide.push(`${route}: ${width}px`);
        await page.screenshot({ path: path.join(SHOTS, `console-${route}-360-en.png`), fullPage: true });
      }
      assert.deepEqual(wide, [], 'no page is wider than 360 px');
    }
  }
  const fcps = paints.map((p) => p.fcp).filter((x) => x !== null);
  assert.ok(fcps.length > 0, 'first paints measured');
  // Generous: a local binary paints the shell's skeleton well within this.
  assert.ok(Math.max(...fcps) < 3000, `first contentful paint under 3 s: ${fcps}`);
  // No layout shift while data loads: every page's shift stays in the "good" band (< 0.1).
  const shifted = paints.filter((p) => p.cls >= 0.1).map((p) => `${p.lang} ${p.route}: ${p.cls}`);
  assert.deepEqual(shifted, [], 'pages whose layout shifted while loading');
});

test('the sign-in form refuses a wrong password, and signing out ends the session', { timeout: 60_000 }, async (t) => {
  const page = await open(t);
  await page.goto(`${BASE}/console`);
  await page.getByLabel('Email').fill(PEOPLE.viewer);
  await page.getByLabel('Password').fill('not the password at all');
  await page.locator('form button[type=submit]').click();
  await page.waitForSelector('#signin-message.error-box');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.locator('form button[type=submit]').click();
  await page.waitForSelector('nav#nav a');
  await page.locator('#sign-out').click();
  await page.waitForSelector('form button[type=submit]');
  const me = await page.evaluate(async () => (await fetch('/api/v1/auth/me')).status);
  assert.equal(me, 401);
  // Forgot password: always the same answer.
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await page.getByLabel('Email').fill('nobody@console.example');
  await page.locator('form button[type=submit]').click();
  await page.waitForSelector('#signin-message.muted');
});

test('a prompt edited, tried and published in the console is what the agent then answers with', { timeout: 120_000 }, async (t) => {
  // A local OpenAI-compatible model that says which persona its system prompt gave it.
  const seen = [];
  const model = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const json = JSON.parse(body || '{}');
      const system = (json.messages || []).filter((m) => m.role === 'system').map((m) => m.content).join('\n');
      seen.push(system);
      const persona = (system.match(/Nour-\d+/) || ['no persona'])[0];
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({
        id: `chatcmpl-${seen.length}`, object: 'chat.completion', created: 1_700_000_000, model: json.model,
        choices: [{ index: 0, message: { role: 'assistant', content: `This is ${persona} speaking.` }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 20, completion_tokens: 5, total_tokens: 25 },
      }));
    });
  });
  await new Promise((r) => model.listen(0, '127.0.0.1', r));
  const port = model.address().port;
  await admin('PUT', '/agent/settings', { provider: 'openai', base_url: `http://127.0.0.1:${port}/v1`, model: 'stub', api_key: 'sk-console-test' });
  t.after(async () => {
    await admin('PUT', '/agent/settings', { provider: 'offline' });
    model.close();
  });

  const marker = `Nour-${Date.now() % 100000}`;
  const page = await open(t);
  await signIn(page, 'tenant_admin');
  await page.goto(`${BASE}/console#/prompts`);
  await page.waitForSelector('#prompt-editor textarea[name=persona]');
  // A draft from whatever is shown, with a new persona.
  if (await page.locator('#new-draft').count()) {
    await page.locator('#new-draft').click();
    await page.waitForSelector('#publish');
  }
  await page.locator('#prompt-editor textarea[name=persona]').fill(`You are ${marker}, the assistant of {{ tenant.name }}.`);
  await page.locator('#prompt-editor input[name=note]').fill('console test');
  await page.locator('#save-draft').click();
  await page.waitForSelector('#status:not([hidden]) >> text=Saved.');
  await page.waitForSelector('#versions button[aria-current="true"]');
  // The playground runs the draft: the model saw the draft's persona.
  await page.getByLabel('A customer message').fill('Who are you?');
  await page.locator('#run-preview').click();
  await page.waitForSelector('#preview-reply');
  assert.match(await page.locator('#preview-reply').innerText(), new RegExp(marker));
  await page.waitForSelector('#playground h3 >> text=Retrieved passages');
  // The side-by-side diff shows the persona change.
  await page.waitForSelector('#diff-out .diff .add');
  await page.locator('#publish').click();
  await page.waitForSelector('#versions button[aria-current="true"] .b-ok');
  await page.screenshot({ path: path.join(SHOTS, 'console-prompts-published-en.png'), fullPage: true });

  // A customer asks in the web chat the widget shows; the published persona answers there.
  const chatPage = await page.context().newPage();
  await chatPage.goto(`${BASE}/chat/${CHANNEL}?embed=1`);
  await chatPage.getByTestId('chat-input').fill('Hello, who am I talking to?');
  await chatPage.getByTestId('chat-send').click();
  const bubble = chatPage.locator('[data-testid="msg"][data-role="agent"]', { hasText: marker });
  await bubble.waitFor({ timeout: DEADLINE });
  assert.match(await bubble.innerText(), new RegExp(`This is ${marker} speaking`));
  await chatPage.close();
});

test('a document uploaded in the console is indexed and found by the search console', { timeout: 120_000 }, async (t) => {
  const page = await open(t);
  await signIn(page, 'tenant_admin');
  await page.goto(`${BASE}/console#/knowledge`);
  await page.waitForSelector('#documents table');
  const word = `zorblax${Date.now() % 100000}`;
  await page.setInputFiles('#kb-files', [
    { name: `warranty-${word}.md`, mimeType: 'text/markdown', buffer: Buffer.from(`# Warranty\n\nEvery ${word} inverter carries a twelve year warranty with free replacement parts.\n`) },
    { name: 'console-hours.txt', mimeType: 'text/plain', buffer: Buffer.from('Our showroom opens at nine and closes at six, Saturday to Thursday.\n') },
  ]);
  await page.waitForSelector(`#uploads li[data-file="warranty-${word}.md"] progress[value="1"]`);
  await page.waitForSelector('#uploads li[data-file="console-hours.txt"] progress[value="1"]');
  const row = page.locator('#documents tr', { hasText: `warranty-${word}` });
  await row.locator('.b-ok').waitFor();
  await page.getByLabel('Query').fill(`${word} warranty`);
  await page.locator('#run-search').click();
  const hit = page.locator('#search-results .hit').first();
  await hit.waitFor();
  assert.match(await hit.innerText(), new RegExp(word));
  const scores = await hit.locator('.scores').innerText();
  assert.match(scores, /Fused \d/);
  assert.match(scores, /Full text \d.*rank 1/);
  await page.screenshot({ path: path.join(SHOTS, 'console-knowledge-search-en.png'), fullPage: true });
});

test('an escalation arrives live in the inbox, is taken over, answered and handed back', { timeout: 120_000 }, async (t) => {
  const page = await open(t);
  await signIn(page, 'sales_agent');
  await page.goto(`${BASE}/console#/inbox`);
  await page.waitForSelector('#conv-list');
  // Live through the server's event stream (GET /api/v1/inbox/events), not by polling.
  await page.waitForSelector('main[data-live="sse"]');
  const s = session();
  const { conversation_id: id } = await chat(s, 'I want to talk to a real person please');
  // It appears without a reload, waiting for a human.
  const item = page.locator(`#conv-list button.conv[data-id="${id}"][data-state="waiting"]`);
  await item.waitFor({ timeout: DEADLINE });
  await item.click();
  // The customer's own chat (the page the widget shows), open on the same session.
  const customer = await page.context().newPage();
  await customer.addInitScript(([key, id]) => localStorage.setItem(key, id), [`switchboard.webchat.session.${CHANNEL}`, s]);
  await customer.goto(`${BASE}/chat/${CHANNEL}?embed=1`);
  await customer.locator('[data-testid="msg"][data-role="customer"]').first().waitFor();
  await page.locator('#claim').click();
  await page.waitForSelector('#handback');
  await page.getByLabel('Your reply to the customer').fill('Hi, this is Console Agent. How can I help?');
  await page.locator('#send-reply').click();
  await page.waitForSelector('#messages li.msg.human');
  const human = await eventually('the reply in the customer\'s chat', async () => (await history(s)).find((m) => m.role === 'human'));
  assert.match(human.text, /Console Agent/);
  // …and it appears in the customer's chat without a reload.
  await customer.locator('[data-testid="msg"][data-role="human"]', { hasText: 'Console Agent' }).waitFor({ timeout: DEADLINE });
  await customer.close();
  await page.getByLabel('Note for the bot (optional)').fill('Customer wants a quote for 6 kW.');
  await page.locator('#handback').click();
  await page.waitForSelector(`#conv-list button.conv[data-id="${id}"][data-state="bot"]`);
  await page.waitForSelector('#claim');
  await page.screenshot({ path: path.join(SHOTS, 'console-inbox-handback-en.png'), fullPage: true });
  // The escalations queue shows it with its reason, lead score and wait.
  await page.goto(`${BASE}/console#/escalations`);
  await page.getByLabel('Status').selectOption('');
  const queued = page.locator('main tr', { hasText: s });
  await queued.waitFor();
  assert.match(await queued.innerText(), /customer_request|asked|person|human/i);
  // A new escalation joins the waiting queue live (the event stream, well before its 30 s timer).
  await page.getByLabel('Status').selectOption('waiting');
  await page.waitForSelector('main[data-live="sse"]');
  const s2 = session();
  await chat(s2, 'Please let me speak to a human being');
  await page.locator('main tr', { hasText: s2 }).waitFor({ timeout: 10_000 });
});

test('the link of an escalation email opens that conversation in the console after signing in', { timeout: 90_000 }, async (t) => {
  // The notification links to `/console?tenant=<tenant id>#/inbox/<conversation id>`
  // (actors/src/handoff.rs); the tenant is named by id, as the email does.
  const r = await fetch(`${BASE}/api/v1/tenants`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const demo = (await r.json()).tenants.find((x) => x.slug === 'demo');
  assert.ok(demo && demo.id, 'the demo tenant has an id');
  const s = session();
  const { conversation_id: id } = await chat(s, 'I want to talk to a real person please, about my invoice');
  const page = await open(t);
  await page.goto(`${BASE}/console?tenant=${demo.id}#/inbox/${id}`);
  // Not signed in: the sign-in form, and the link survives it.
  await page.getByLabel(/^(Email|البريد الإلكتروني)$/).fill(PEOPLE.sales_agent);
  await page.getByLabel(/^(Password|كلمة المرور)$/).fill(PASSWORD);
  await page.locator('form button[type=submit]').click();
  await page.waitForFunction((want) => location.hash === `#/inbox/${want}`, id);
  await page.locator('#messages li.msg', { hasText: 'about my invoice' }).waitFor();
  await page.waitForSelector('#claim');
});

test('an Arabic conversation end to end with the console in Arabic', { timeout: 120_000 }, async (t) => {
  const page = await open(t, { lang: 'ar' });
  await signIn(page, 'sales_agent');
  assert.equal(await page.evaluate(() => document.documentElement.dir), 'rtl');
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'ar');
  await page.goto(`${BASE}/console#/inbox`);
  await page.waitForSelector('#conv-list');
  assert.equal(await page.locator('main h1').innerText(), 'صندوق الوارد');
  const s = session();
  const { conversation_id: id } = await chat(s, 'مرحبا، هل تركبون الألواح الشمسية في دبي؟');
  const item = page.locator(`#conv-list button.conv[data-id="${id}"]`);
  await item.waitFor();
  await eventually('the bot\'s Arabic answer', async () => (await history(s)).find((m) => m.role === 'agent'));
  await item.click();
  await page.waitForSelector('#messages li.msg.customer');
  // Message text is laid out right to left (dir=auto on Arabic text), the navigation mirrored.
  const customerDir = await page.locator('#messages li.msg.customer .text').first().evaluate((e) => [e.getAttribute('dir'), getComputedStyle(e).direction]);
  assert.deepEqual(customerDir, ['auto', 'rtl']);
  const navSide = await page.evaluate(() => {
    const nav = document.getElementById('nav').getBoundingClientRect();
    const main = document.getElementById('main').getBoundingClientRect();
    return nav.left > main.left ? 'right' : 'left';
  });
  assert.equal(navSide, 'right', 'the navigation sits on the right in Arabic');
  await page.locator('#claim').click();
  await page.getByLabel('ردك على العميل').fill('أهلاً! نعم، نركّب الألواح في دبي كلها.');
  await page.locator('#send-reply').click();
  const bubble = page.locator('#messages li.msg.human .text').last();
  await bubble.waitFor();
  assert.equal(await bubble.evaluate((e) => getComputedStyle(e).direction), 'rtl');
  const human = await eventually('the Arabic reply in the chat', async () => (await history(s)).find((m) => m.role === 'human'));
  assert.match(human.text, /نركّب/);
  await page.locator('#close-conversation').click();
  await page.waitForSelector(`#conv-list button.conv[data-id="${id}"][data-state="closed"]`);
  await page.screenshot({ path: path.join(SHOTS, 'console-inbox-conversation-ar.png'), fullPage: true });
});

test('the inbox by keyboard alone: Tab reaches the list, Enter opens a conversation, focus is visible', { timeout: 60_000 }, async (t) => {
  const s = session();
  await chat(s, 'Keyboard test: do you sell batteries?');
  const page = await open(t);
  await signIn(page, 'sales_agent');
  await page.goto(`${BASE}/console#/inbox`);
  await page.waitForSelector('#conv-list button.conv');
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  let reached = null;
  for (let i = 0; i < 40 && !reached; i += 1) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => {
      const a = document.activeElement;
      if (!a || !a.matches('#conv-list button.conv')) return null;
      const style = getComputedStyle(a);
      return { id: a.dataset.id, outline: style.outlineStyle, width: style.outlineWidth, visible: a.matches(':focus-visible') };
    });
  }
  assert.ok(reached, 'Tab reaches a conversation of the list');
  assert.ok(reached.visible && reached.outline !== 'none' && reached.width !== '0px', `visible focus: ${JSON.stringify(reached)}`);
  await page.keyboard.press('Enter');
  await page.waitForFunction((id) => location.hash === `#/inbox/${id}`, reached.id);
  await page.waitForSelector('#transcript-title');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.id), reached.id, 'focus stays on the list item');
  // Narrow screens: 360 px wide, nothing wider than the screen.
  await page.setViewportSize({ width: 360, height: 740 });
  await page.goto(`${BASE}/console#/inbox/${reached.id}`);
  await page.waitForSelector('#transcript-title');
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 361), 'no horizontal scroll at 360 px');
  await page.screenshot({ path: path.join(SHOTS, 'console-inbox-360-en.png'), fullPage: true });
});

test('channels, API keys and the audit log: create, copy, disable, secret shown once, revoke, filter', { timeout: 90_000 }, async (t) => {
  const page = await open(t);
  await signIn(page, 'tenant_admin');
  await page.goto(`${BASE}/console#/channels`);
  await page.waitForSelector('#channel-cards article.card');
  // A Telegram channel's form asks for its own settings; a web-chat channel needs none.
  await page.getByLabel('Kind').selectOption('telegram');
  await page.waitForSelector('#new-channel [data-setting="bot_token"][type="password"]');
  await page.getByLabel('Kind').selectOption('webchat');
  const name = `Console chat ${Date.now() % 100000}`;
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.locator('#create-channel').click();
  const card = page.locator('#channel-cards article.card', { hasText: name });
  await card.waitFor();
  assert.match(await card.locator('input[readonly]').inputValue(), new RegExp(`^${BASE}/chat/`));
  await card.getByRole('button', { name: /^Copy/ }).click();
  await page.waitForSelector('#status:not([hidden]) >> text=Copied');
  await card.getByRole('button', { name: 'Disable' }).click();
  await card.locator('.badge', { hasText: 'Disabled' }).waitFor();
  await card.getByRole('button', { name: 'Check health' }).click();
  await card.locator('dt', { hasText: 'Credentials' }).waitFor();

  await page.goto(`${BASE}/console#/keys`);
  await page.waitForSelector('#keys table');
  const keyName = `console-key-${Date.now() % 100000}`;
  await page.getByLabel('Name', { exact: true }).fill(keyName);
  await page.locator('#new-key button[type=submit]').click();
  const secret = await page.locator('#new-key-secret').inputValue();
  assert.match(secret, /^sbk_/);
  const me = await fetch(`${BASE}/api/v1/auth/me`, { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(me.status, 200, 'the new key works');
  const row = page.locator('#keys tr', { hasText: keyName });
  await row.getByRole('button', { name: `Revoke: ${keyName}` }).click();
  await row.locator('.badge', { hasText: 'Revoked' }).waitFor();
  assert.equal((await fetch(`${BASE}/api/v1/auth/me`, { headers: { authorization: `Bearer ${secret}` } })).status, 401, 'revoked');
  // Reloading shows no secret any more.
  await page.reload();
  await page.waitForSelector('#keys table');
  assert.equal(await page.locator('#new-key-secret').count(), 0);

  await page.goto(`${BASE}/console#/audit`);
  await page.waitForSelector('#audit table');
  await page.getByLabel('Resource type').fill('api_key');
  await page.locator('#audit-filters button[type=submit]').click();
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#audit tbody tr')];
    return rows.length > 0 && rows.every((r) => r.textContent.includes('api_key'));
  });
});

test('bookings: a week calendar where an agent cancels a booking; leads with score and reasons', { timeout: 90_000 }, async (t) => {
  const { slots } = await admin('GET', '/availability/slots?limit=1');
  assert.ok(slots.length, 'the demo tenant has free slots');
  const customer = `Console Customer ${Date.now() % 100000}`;
  const { booking } = await admin('POST', '/bookings', { start: slots[0].start, customer_name: customer, customer_email: 'customer@console.example', lang: 'en', idempotency_key: `console-${Date.now()}` });
  const page = await open(t);
  await signIn(page, 'sales_agent');
  await page.goto(`${BASE}/console#/bookings`);
  await page.waitForSelector('#week .day h3');
  const entry = page.locator(`#week .booking[data-booking="${booking.id}"]`);
  for (let i = 0; i < 3 && !(await entry.count()); i += 1) {
    await page.getByRole('button', { name: 'Next week' }).click();
    await page.waitForTimeout(500);
  }
  await entry.waitFor();
  assert.match(await entry.innerText(), new RegExp(customer));
  await entry.getByRole('button', { name: 'Cancel booking' }).click();
  await page.locator(`#week .booking.cancelled[data-booking="${booking.id}"]`).waitFor();
  const after = await admin('GET', `/bookings/${booking.id}`);
  assert.equal(after.booking.status, 'cancelled');

  await page.goto(`${BASE}/console#/leads`);
  await page.waitForSelector('#leads table');
  await page.waitForSelector('#deliveries table');
});
