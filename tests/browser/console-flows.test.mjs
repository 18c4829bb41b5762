// The console's flows that console.test.mjs does not walk, in headless Chromium against the real
// binary, through the UI (clicks and typing; the API only sets data up and checks the outcome):
// prompts published twice, rolled back and a draft deleted; a document dropped on the drop zone,
// edited, re-indexed and deleted; the inbox's "load more"; a booking rescheduled from the week
// view and the availability edited; a tenant created and switched to; a member's role changed,
// the member removed, and an invitation refused for want of an email sender.
//
//   SWITCHBOARD_URL=http://127.0.0.1:8080 SWITCHBOARD_TOKEN=<admin token> SWITCHBOARD_CHANNEL=<web chat id> \
//   SWITCHBOARD_CONSOLE_PASSWORD=<password of root@, admin@, agent@, viewer@, member@console.example> \
//     node --test tests/browser/console-flows.test.mjs
//
// scripts/browser-test.sh makes those people with `switchboard user create`; member@ (a viewer of
// the demo tenant) exists for the people test alone, which removes it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, TOKEN, CHANNEL, PASSWORD, DEADLINE, PEOPLE, requireEnv, launch, raw, admin, chat, history,
  eventually, session as sessionOf, open as openContext, signIn,
} from './console-helpers.mjs';

const MEMBER = 'member@console.example';

let browser;
const open = (t, opts) => openContext(browser, t, opts);
const session = () => sessionOf('flows');

/** The status line's message of `kind` (`ok`, `error`) containing `text`. */
function status(page, kind, text) {
  return page.locator(`#status[data-kind="${kind}"]:not([hidden])`, { hasText: text });
}

before(async () => {
  requireEnv();
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test('prompts: two versions published, the first rolled back to, a draft deleted', { timeout: 120_000 }, async (t) => {
  const page = await open(t);
  await signIn(page, 'tenant_admin');
  await page.goto(`${BASE}/console#/prompts`);
  await page.waitForSelector('#prompt-editor h2');
  await page.waitForSelector('#versions button');

  // A new draft (unless one is open already), typed in and published.
  async function publish(persona) {
    if (!(await page.locator('#publish').count())) {
      await page.locator('#new-draft').click();
      await page.waitForSelector('#publish');
    }
    await page.locator('#prompt-editor textarea[name=persona]').fill(persona);
    await page.locator('#prompt-editor textarea[name=instructions]').fill(`Answer as ${persona}. Keep it short.`);
    await page.locator('#publish').click();
    await page.waitForSelector('#versions button[aria-current="true"] .b-ok');
    await page.waitForSelector('#new-draft');
    const { versions, published_version: published } = await admin('GET', '/prompts');
    const v = versions.find((x) => x.persona === persona);
    assert.ok(v, `version with persona ${persona}`);
    assert.equal(published, v.version, `${persona} is published`);
    return v;
  }
  const stamp = Date.now() % 100000;
  const first = await publish(`You are Flows-A-${stamp}.`);
  const second = await publish(`You are Flows-B-${stamp}.`);
  assert.ok(second.version > first.version);

  // Roll back to the first from its page in the versions list.
  await page.locator(`#versions button[data-version="${first.version}"]`).click();
  await page.waitForSelector(`#prompt-editor h2 >> text=v${first.version}`);
  await page.locator('#rollback').click();
  await page.waitForSelector(`#versions button[data-version="${second.version + 1}"] .b-ok`);
  const after = await admin('GET', '/prompts');
  assert.equal(after.published_version, second.version + 1, 'the rollback published a new version');
  const copy = after.versions.find((x) => x.version === after.published_version);
  for (const f of ['persona', 'instructions', 'guardrails', 'channel_styles']) {
    assert.deepEqual(copy[f], first[f], `the rolled-back version's ${f} is the first's`);
  }

  // A draft, deleted.
  await page.locator('#new-draft').click();
  await page.waitForSelector('#publish');
  const draft = Number(await page.locator('#versions button[aria-current="true"]').getAttribute('data-version'));
  assert.ok((await admin('GET', '/prompts')).versions.some((x) => x.version === draft && x.status === 'draft'));
  await page.locator('#prompt-editor button', { hasText: 'Delete' }).click();
  await page.locator(`#versions button[data-version="${draft}"]`).waitFor({ state: 'detached' });
  const end = await admin('GET', '/prompts');
  assert.ok(!end.versions.some((x) => x.version === draft), 'the draft is gone');
  assert.equal(end.published_version, second.version + 1, 'deleting a draft publishes nothing');
});

test('knowledge: a file dropped on the drop zone is indexed, edited, re-indexed and deleted', { timeout: 120_000 }, async (t) => {
  const page = await open(t);
  await signIn(page, 'tenant_admin');
  await page.goto(`${BASE}/console#/knowledge`);
  await page.waitForSelector('#documents table');
  const word = `quibbit${Date.now() % 100000}`;
  const name = `dropped-${word}.md`;
  // A synthetic drag and drop of one file onto the drop zone.
  await page.evaluate(({ name, text }) => {
    const dt = new DataTransfer();
    dt.items.add(new File([text], name, { type: 'text/markdown' }));
    const zone = document.getElementById('dropzone');
    for (const type of ['dragenter', 'dragover', 'drop']) {
      zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
    }
  }, { name, text: `# Dropped\n\nThe ${word} heat pump has a seven year warranty.\n` });
  await page.waitForSelector(`#uploads li[data-file="${name}"] progress[value="1"]`);
  const row = page.locator('#documents tr', { hasText: name });
  await row.locator('.b-ok').waitFor();
  const id = await row.locator('[data-doc]').getAttribute('data-doc');
  assert.ok(id, 'the row names its document');

  // Title and tags.
  await row.getByRole('button', { name: 'Edit' }).click();
  const title = `Heat pump ${word}`;
  await page.getByLabel('Title', { exact: true }).fill(title);
  await page.getByLabel('Tags (comma-separated)').fill('warranty, heat-pump');
  await page.locator('form.panel button[type=submit]', { hasText: 'Save' }).click();
  await status(page, 'ok', 'Saved').waitFor();
  const edited = page.locator('#documents tr', { hasText: title });
  await edited.waitFor();
  const doc = async () => { const r = await admin('GET', `/knowledge/documents/${id}`); return r.document || r; };
  const afterEdit = await doc();
  assert.equal(afterEdit.title, title);
  assert.deepEqual([...afterEdit.tags].sort(), ['heat-pump', 'warranty']);

  // Re-index (once the edit's own re-indexing, if any, is over): the server puts the document
  // back in the queue, and the row ends indexed again. The row shows Queued/Indexing in between
  // unless the indexer finishes before the list is fetched again (a small file often does).
  await eventually('the edited document indexed', async () => (await doc()).status === 'indexed');
  await edited.locator('.b-ok').waitFor();
  const indexedBefore = new Date((await doc()).indexed_at).getTime();
  await page.evaluate((id) => {
    window.flowStatuses = [];
    const read = () => {
      const cell = document.querySelector(`#documents [data-doc="${id}"]`);
      const badge = cell && cell.closest('tr').querySelector('.badge');
      const s = badge ? badge.textContent.trim() : null;
      if (s && window.flowStatuses[window.flowStatuses.length - 1] !== s) window.flowStatuses.push(s);
    };
    read();
    new MutationObserver(read).observe(document.getElementById('documents'), { childList: true, subtree: true, characterData: true });
  }, id);
  const [requeued] = await Promise.all([
    page.waitForResponse((r) => r.url().includes(`/knowledge/documents/${id}/reindex`) && r.request().method() === 'POST'),
    edited.getByRole('button', { name: 'Re-index' }).click(),
  ]);
  assert.equal(requeued.status(), 202);
  assert.equal((await requeued.json()).document.status, 'queued', 'back in the queue');
  const seen = await eventually('the document indexed again', async () => {
    const d = await doc();
    const s = await page.evaluate(() => window.flowStatuses);
    const again = d.status === 'indexed' && new Date(d.indexed_at).getTime() > indexedBefore;
    return again && s[s.length - 1] === 'Indexed' ? s : null;
  }).catch(async (e) => { console.log('statuses seen', await page.evaluate(() => window.flowStatuses)); throw e; });
  assert.equal(seen[0], 'Indexed');
  assert.ok(seen.every((s) => ['Queued', 'Indexing', 'Indexed'].includes(s)), `statuses: ${seen}`);
  console.log(`re-index as the row showed it: ${seen.join(' -> ')}`);
  await edited.locator('.b-ok').waitFor();

  // Deleted: gone from the list and from the API.
  await edited.getByRole('button', { name: 'Delete' }).click();
  await page.locator(`#documents [data-doc="${id}"]`).waitFor({ state: 'detached' });
  assert.equal((await raw('GET', `/knowledge/documents/${id}`)).status, 404);
  const { documents } = await admin('GET', '/knowledge/documents?limit=200');
  assert.ok(!documents.some((d) => d.id === id), 'not listed any more');
});

test('inbox: "load more" appends the older conversations without duplicates', { timeout: 240_000 }, async (t) => {
  // The inbox asks for 50 conversations a page (PAGE in page-inbox.js): make sure there are 60+.
  const PAGE = 50;
  const { conversations: existing } = await admin('GET', '/conversations?limit=1000');
  const need = Math.max(0, PAGE + 10 - existing.length);
  const sessions = [];
  for (let i = 0; i < need; i += 10) {
    const batch = Array.from({ length: Math.min(10, need - i) }, () => session());
    await Promise.all(batch.map((s, j) => chat(s, `Paging test ${i + j}: what are your opening hours?`)));
    sessions.push(...batch);
  }
  // The bot's answers settle first, so the order of the list stays put while paging.
  for (const s of sessions) {
    await eventually(`the bot's answer in ${s}`, async () => (await history(s)).some((m) => m.role === 'agent'), 60_000);
  }
  const { conversations: all } = await admin('GET', '/conversations?limit=1000');
  assert.ok(all.length > PAGE, `${all.length} conversations`);

  const page = await open(t);
  await signIn(page, 'sales_agent');
  await page.goto(`${BASE}/console#/inbox`);
  await page.waitForSelector('#conv-list button.conv');
  const ids = () => page.$$eval('#conv-list button.conv', (bs) => bs.map((b) => b.dataset.id));
  await eventually('the first page', async () => (await ids()).length === PAGE);
  const firstPage = await ids();
  const more = page.locator('#inbox-more');
  await more.waitFor({ state: 'visible' });
  await more.click();
  await eventually('the second page', async () => (await ids()).length > PAGE);
  const shown = await ids();
  assert.equal(new Set(shown).size, shown.length, 'no conversation twice');
  assert.deepEqual(shown.slice(0, PAGE), firstPage, 'the first page stays as it was');
  const known = new Set(all.map((c) => c.id));
  const older = shown.slice(PAGE);
  assert.ok(older.every((x) => known.has(x)), 'the appended ones are conversations of the tenant');
  // They are the next ones, older than the last of the first page.
  const at = new Map(all.map((c) => [c.id, c.last_message_at]));
  const lastFirst = new Date(at.get(firstPage[PAGE - 1])).getTime();
  assert.ok(older.every((x) => new Date(at.get(x)).getTime() <= lastFirst), 'older than the first page');
  assert.equal(shown.length, Math.min(all.length, 2 * PAGE), 'a full second page (or all that is left)');
  if (all.length <= 2 * PAGE) await more.waitFor({ state: 'hidden' });
});

test('bookings: rescheduled from the week view; the availability edited by a tenant admin', { timeout: 120_000 }, async (t) => {
  const { slots } = await admin('GET', '/availability/slots?limit=1');
  assert.ok(slots.length, 'the demo tenant has free slots');
  const customer = `Flows Customer ${Date.now() % 100000}`;
  const { booking } = await admin('POST', '/bookings', { start: slots[0].start, customer_name: customer, customer_email: 'flows@console.example', lang: 'en', idempotency_key: `flows-${Date.now()}` });
  t.after(async () => { await raw('POST', `/bookings/${booking.id}/cancel`, {}); });
  // Another free slot, the same local day if there is one (it stays in the week shown).
  const { slots: free } = await admin('GET', '/availability/slots?limit=50');
  const day = booking.local_start.slice(0, 10);
  const others = free.filter((s) => new Date(s.start).getTime() !== new Date(booking.starts_at).getTime());
  const target = others.find((s) => String(s.local_start).startsWith(day)) || others[0];
  assert.ok(target, 'another free slot');

  const page = await open(t);
  await signIn(page, 'tenant_admin');
  await page.goto(`${BASE}/console#/bookings`);
  await page.waitForSelector('#week .day h3');
  const entry = page.locator(`#week .booking[data-booking="${booking.id}"]`);
  for (let i = 0; i < 3 && !(await entry.count()); i += 1) {
    await page.getByRole('button', { name: 'Next week' }).click();
    await page.waitForTimeout(500);
  }
  await entry.waitFor();
  await entry.getByRole('button', { name: 'Reschedule' }).click();
  await page.getByLabel(/^New start/).fill(String(target.local_start).slice(0, 16));
  await page.locator('form.panel button[type=submit]', { hasText: 'Reschedule' }).click();
  await status(page, 'ok', 'Saved').waitFor();
  // A new booking replaces the old one at the new time (same calendar event).
  const range = `from=${encodeURIComponent(new Date(Date.now() - 86_400_000).toISOString())}&to=${encodeURIComponent(new Date(Date.now() + 30 * 86_400_000).toISOString())}&limit=500`;
  const moved = await eventually('the booking moved', async () => {
    const { bookings } = await admin('GET', `/bookings?${range}`);
    return bookings.find((b) => b.customer_name === customer && b.status === 'confirmed'
      && new Date(b.starts_at).getTime() === new Date(target.start).getTime());
  });
  t.after(async () => { await raw('POST', `/bookings/${moved.id}/cancel`, {}); });
  const old = (await admin('GET', `/bookings/${booking.id}`)).booking;
  assert.notEqual(old.status, 'confirmed', 'the old booking no longer holds its time');
  const { bookings: confirmed } = await admin('GET', `/bookings?${range}`);
  assert.equal(confirmed.filter((b) => b.customer_name === customer && b.status === 'confirmed').length, 1, 'one confirmed booking for the customer');
  if (String(target.local_start).startsWith(day)) {
    const entry2 = page.locator(`#week .booking[data-booking="${moved.id}"]`);
    await entry2.waitFor();
    assert.match(await entry2.innerText(), new RegExp(`${String(target.local_start).slice(11, 16)}[\\s\\S]*${customer}`));
  }

  // The availability editor: new hours on one day, saved, then the old ones back.
  const { availability: before } = await admin('GET', '/availability');
  assert.ok(before, 'the demo tenant has availability');
  const dayKey = 'sat';
  const original = await page.locator(`#availability input[name="hours-${dayKey}"]`).inputValue();
  // A successful save draws the form afresh from the server: wait for that before typing again,
  // or the new drawing replaces what was typed into the old one.
  const drawn = await page.locator(`#availability input[name="hours-${dayKey}"]`).elementHandle();
  await page.getByLabel('Saturday', { exact: true }).fill('10:00-12:30, 14:00-16:00');
  await page.locator('#save-availability').click();
  const changed = await eventually('the new hours saved', async () => {
    const { availability } = await admin('GET', '/availability');
    return JSON.stringify(availability.weekly_hours[dayKey]) === JSON.stringify([['10:00', '12:30'], ['14:00', '16:00']]) ? availability : null;
  });
  for (const d of ['mon', 'tue', 'wed', 'thu', 'fri', 'sun']) {
    assert.deepEqual(changed.weekly_hours[d], before.weekly_hours[d], `${d} unchanged`);
  }
  // Restored through the console too, once the saved hours are drawn again.
  await page.waitForFunction((old) => !old.isConnected, drawn);
  await page.waitForFunction(() => document.querySelector('#availability input[name="hours-sat"]').value.startsWith('10:00-12:30'));
  await page.getByLabel('Saturday', { exact: true }).fill(original);
  await page.locator('#save-availability').click();
  await eventually('the availability restored', async () => {
    const { availability } = await admin('GET', '/availability');
    return JSON.stringify(availability.weekly_hours) === JSON.stringify(before.weekly_hours);
  });
  assert.deepEqual((await admin('GET', '/availability')).availability, before);
});

test('people: a tenant admin changes a member\'s role and removes them; an invitation without an email sender says why', { timeout: 90_000 }, async (t) => {
  const page = await open(t);
  await signIn(page, 'tenant_admin');
  await page.goto(`${BASE}/console#/users`);
  await page.waitForSelector('#users table');
  const member = async () => (await admin('GET', '/users')).users.find((u) => u.email === MEMBER);
  assert.equal((await member())?.role, 'viewer', `${MEMBER} is a viewer (scripts/browser-test.sh)`);

  await page.getByLabel(`Change role: ${MEMBER}`).selectOption('sales_agent');
  await status(page, 'ok', 'Saved').waitFor();
  assert.equal((await member()).role, 'sales_agent');
  // The page drawn afresh shows the new role.
  await page.reload();
  await page.waitForSelector('#users table');
  assert.equal(await page.getByLabel(`Change role: ${MEMBER}`).inputValue(), 'sales_agent');

  await page.getByRole('button', { name: `Remove: ${MEMBER}` }).click();
  await page.locator('#users tr', { hasText: MEMBER }).waitFor({ state: 'detached' });
  assert.equal(await member(), undefined, 'no longer a member');

  // No email channel and no platform SMTP: the server's 422 no_email_sender, shown to the admin.
  const invitee = `invitee-${Date.now() % 100000}@console.example`;
  await page.getByLabel('Email', { exact: true }).fill(invitee);
  await page.locator('#invite select[name=role]').selectOption('viewer');
  await page.locator('#invite button[type=submit]').click();
  await status(page, 'error', 'no way to send email').waitFor();
  assert.match(await page.locator('#status').innerText(), /email channel.*SMTP/);
  assert.equal(await page.getByLabel('Email', { exact: true }).inputValue(), invitee, 'the form keeps what was typed');
  const { invitations } = await admin('GET', '/users/invitations');
  assert.ok(!invitations.some((i) => i.email === invitee), 'no invitation was made');
  const direct = await raw('POST', '/users/invitations', { email: invitee, role: 'viewer' });
  assert.equal(direct.status, 422);
  assert.equal((await direct.json()).error.code, 'no_email_sender');
});

// Last in this file: it adds a tenant (listed after demo, by creation, so a platform admin still
// starts in demo elsewhere).
test('tenants: a platform admin creates a tenant, finds it in the list and the switcher, and opens its empty inbox', { timeout: 90_000 }, async (t) => {
  const page = await open(t);
  await signIn(page, 'platform_admin');
  await page.goto(`${BASE}/console#/tenants`);
  await page.waitForSelector('#tenants table');
  const slug = `flows-${Date.now() % 1000000}`;
  const name = `Flows Tenant ${slug.slice(6)}`;
  await page.getByLabel('Slug', { exact: true }).fill(slug);
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.locator('#new-tenant button[type=submit]').click();
  await status(page, 'ok', 'Saved').waitFor();
  await page.locator('#tenants tr', { hasText: slug }).waitFor();
  const r = await fetch(`${BASE}/api/v1/tenants`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.ok((await r.json()).tenants.some((x) => x.slug === slug && x.name === name), 'the API lists it');
  await page.locator(`#tenant-switch option[value="${slug}"]`).waitFor({ state: 'attached' });
  assert.equal(await page.locator(`#tenant-switch option[value="${slug}"]`).innerText(), name);

  await page.getByLabel('Tenant', { exact: true }).selectOption(slug);
  await page.locator('nav#nav a[data-route="inbox"]').click();
  await page.waitForSelector('#conv-list li.empty');
  assert.equal(await page.locator('#conv-list button.conv').count(), 0, 'a new tenant has no conversation');
  assert.equal(await page.locator('#tenant-switch').inputValue(), slug);
  // The inbox asked for the new tenant's conversations.
  const asked = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name)
    .filter((u) => u.includes('/api/v1/conversations?')).pop());
  assert.match(asked, new RegExp(`tenant=${slug}`));
});
