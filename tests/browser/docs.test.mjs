// The interactive API reference at /docs in headless Chromium, with every request to another
// origin refused: it renders every operation of /api/v1/openapi.json, filters them, and its
// try-it form calls the API with a bearer credential.
//
//   SWITCHBOARD_URL=http://127.0.0.1:8080 SWITCHBOARD_TOKEN=<admin token> node --test tests/browser/docs.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BASE = (process.env.SWITCHBOARD_URL || '').trim().replace(/\/+$/, '');
const TOKEN = (process.env.SWITCHBOARD_TOKEN || '').trim();
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

test('API reference: offline, complete, filterable, and its try-it form calls the API', { timeout: 120_000 }, async (t) => {
  assert.ok(BASE, 'SWITCHBOARD_URL is not set');
  assert.ok(TOKEN, 'SWITCHBOARD_TOKEN (the admin token) is not set');
  const doc = await (await fetch(`${BASE}/api/v1/openapi.json`)).json();
  const operations = Object.values(doc.paths).flatMap((item) => METHODS.filter((m) => item[m]));
  assert.ok(operations.length > 50, `the document lists ${operations.length} operations`);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, locale: 'en-US' });
    // No internet: anything not from the server itself is refused and remembered.
    const foreign = [];
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(BASE + '/')) return route.continue();
      foreign.push(url);
      return route.abort('internetdisconnected');
    });
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.setDefaultTimeout(20_000);

    const resp = await page.goto(`${BASE}/docs`, { waitUntil: 'load' });
    assert.equal(resp.status(), 200);
    await page.waitForSelector('details.op');
    assert.equal(await page.locator('details.op').count(), operations.length, 'one entry per operation');
    assert.equal(await page.locator('nav a').count(), new Set(
      Object.values(doc.paths).flatMap((item) => METHODS.filter((m) => item[m]).map((m) => (item[m].tags || ['other'])[0])),
    ).size, 'one area per tag');

    // The search box narrows the list to matching operations.
    await page.getByLabel('Search').fill('/api/v1/keys');
    const visible = await page.locator('details.op:not(.hidden)').evaluateAll((els) =>
      els.map((e) => e.querySelector('.path').textContent));
    assert.ok(visible.length >= 3 && visible.every((p) => p.startsWith('/api/v1/keys')), `filtered: ${visible}`);
    await page.getByLabel('Search').fill('');

    // An operation opens with its access, parameters and answers; try it with the credential.
    await page.getByLabel('Bearer credential').fill(TOKEN);
    await page.getByLabel('Tenant').first().fill('demo');
    const op = page.locator('details.op').filter({ has: page.locator('.path', { hasText: /^\/api\/v1\/keys$/ }) })
      .filter({ has: page.locator('.method', { hasText: 'get' }) });
    await op.locator('summary').click();
    const body = op.locator('.body');
    await body.getByText('tenant_admin').first().waitFor();
    assert.match(await body.innerText(), /401/, 'the answers include 401');
    // The tenant parameter of the form is labelled and takes the page's tenant.
    assert.equal(await body.getByLabel('tenant (query)').inputValue(), 'demo');
    await body.getByRole('button', { name: 'Send' }).click();
    await body.locator('.result .status').waitFor();
    assert.match(await body.locator('.result .status').innerText(), /^200/);
    const answer = JSON.parse(await body.locator('.result pre').innerText());
    assert.ok(Array.isArray(answer.keys), `GET /api/v1/keys answered ${JSON.stringify(answer)}`);

    // Without a credential the same call is refused with the documented error body.
    await page.getByLabel('Bearer credential').fill('');
    await body.getByRole('button', { name: 'Send' }).click();
    await body.locator('.result .status', { hasText: /^401/ }).waitFor();
    assert.equal(JSON.parse(await body.locator('.result pre').innerText()).error.code, 'unauthorized');

    assert.deepEqual(foreign, [], 'the page asked for something outside the server');
    assert.deepEqual(pageErrors, [], 'the page threw JavaScript errors');
    t.diagnostic(`${operations.length} operations rendered offline; try-it answered 200 and 401`);
  } finally {
    await browser.close();
  }
});
