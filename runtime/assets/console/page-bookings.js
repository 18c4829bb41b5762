// Bookings: a week calendar (in the tenant's time zone, from each booking's `local_start`) with
// cancel and reschedule for sales agents, and the availability editor for tenant admins.

import { h, mount, field, skeleton, notify, fail, badge } from './ui.js';
import { fmtDate } from './i18n.js';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

function monday(d) {
  const x = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  x.setUTCDate(x.getUTCDate() - ((x.getUTCDay() + 6) % 7));
  return x;
}
const ymd = (d) => d.toISOString().slice(0, 10);

export async function render(ctx) {
  const { el, t, api } = ctx;
  let start = monday(new Date());
  const label = h('strong#week-label');
  const week = h('div.week#week', DAYS.map(() => h('div.day', skeleton(2, 40))));
  const avail = h('section.panel#availability');
  mount(el, h('div.page-head', h('h1', { tabindex: '-1' }, t('bk.title')),
    h('div.actions',
      h('button.secondary', { type: 'button', 'aria-label': t('bk.prev'), onclick: () => { start.setUTCDate(start.getUTCDate() - 7); load(); } }, h('span.flip', { 'aria-hidden': 'true' }, '‹')),
      label,
      h('button.secondary', { type: 'button', 'aria-label': t('bk.next'), onclick: () => { start.setUTCDate(start.getUTCDate() + 7); load(); } }, h('span.flip', { 'aria-hidden': 'true' }, '›')))),
  week, avail);

  async function load() {
    const end = new Date(start);
    end.setUTCDate(end.getUTCDate() + 7);
    label.textContent = `${t('bk.week')} ${fmtDate(start, { dateStyle: 'medium' })}`;
    // A day of margin on each side: the week is drawn in the tenant's local days.
    const from = new Date(start); from.setUTCDate(from.getUTCDate() - 1);
    const to = new Date(end); to.setUTCDate(to.getUTCDate() + 1);
    const r = await api.get('/bookings', { from: from.toISOString(), to: to.toISOString(), limit: 500 });
    if (ctx.stale()) return;
    const byDay = new Map(DAYS.map((_, i) => { const d = new Date(start); d.setUTCDate(d.getUTCDate() + i); return [ymd(d), []]; }));
    for (const b of r.bookings || []) {
      const key = (b.local_start || b.starts_at).slice(0, 10);
      if (byDay.has(key)) byDay.get(key).push(b);
    }
    mount(week, [...byDay.entries()].map(([date, list], i) => h('section.day', { 'aria-label': `${t(`bk.day.${DAYS[i]}`)} ${date}` },
      h('h3', `${t(`bk.day.${DAYS[i]}`)} ${date.slice(5)}`),
      list.sort((a, b) => a.starts_at.localeCompare(b.starts_at)).map((b) => h(`div.booking${b.status === 'cancelled' ? '.cancelled' : ''}`, { dataset: { booking: b.id } },
        h('div', h('strong', (b.local_start || '').slice(11, 16)), ' ', h('bdi', { dir: 'auto' }, b.customer_name || b.customer_email || '')),
        h('div.muted', { dir: 'auto' }, b.title),
        b.status === 'confirmed' && ctx.can('sales_agent') ? h('div.actions',
          h('button.small.secondary', { type: 'button', onclick: () => reschedule(b) }, t('bk.reschedule')),
          h('button.small.danger', { type: 'button', onclick: async () => {
            if (!window.confirm(t('bk.cancel'))) return;
            try { await api.post(`/bookings/${b.id}/cancel`, {}); await load(); } catch (e) { fail(e); }
          } }, t('bk.cancel'))) : badge(b.status))))));
  }

  function reschedule(b) {
    const input = h('input', { type: 'datetime-local', name: 'start', value: (b.local_start || '').slice(0, 16) });
    const form = h('form.panel', field(`${t('bk.new_start')} (${b.timezone})`, input),
      h('div.actions', h('button', { type: 'submit' }, t('bk.reschedule')), h('button.ghost', { type: 'button', onclick: () => form.remove() }, t('common.cancel'))));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      // The input is in the tenant's time zone: keep the offset the booking had there.
      const offset = offsetOf(b);
      try {
        await api.post(`/bookings/${b.id}/reschedule`, { start: `${input.value}:00${offset}` });
        notify(t('common.saved'));
        form.remove();
        await load();
      } catch (err) { fail(err); }
    });
    week.before(form);
    input.focus();
  }

  /** The booking's UTC offset in its time zone, from `starts_at` and `local_start`. */
  function offsetOf(b) {
    const utc = new Date(b.starts_at).getTime();
    const local = new Date(`${b.local_start}Z`).getTime();
    const minutes = Math.round((local - utc) / 60000);
    const sign = minutes < 0 ? '-' : '+';
    const m = Math.abs(minutes);
    return `${sign}${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  }

  async function loadAvailability() {
    const r = await api.get('/availability');
    if (ctx.stale()) return;
    const a = r.availability;
    const admin = ctx.can('tenant_admin');
    if (!a && !admin) { mount(avail, h('h2', t('bk.availability')), h('p.muted', t('bk.none'))); return; }
    const cur = a || { timezone: 'UTC', weekly_hours: {}, slot_minutes: 30, buffer_minutes: 0, min_notice_minutes: 60, horizon_days: 14, holidays: [] };
    const tz = h('input', { name: 'timezone', value: cur.timezone, readonly: admin ? null : true });
    const slot = h('input', { name: 'slot_minutes', type: 'number', min: '5', value: String(cur.slot_minutes ?? 30), readonly: admin ? null : true });
    const buffer = h('input', { name: 'buffer_minutes', type: 'number', min: '0', value: String(cur.buffer_minutes ?? 0), readonly: admin ? null : true });
    const days = {};
    const dayFields = DAYS.map((d) => {
      const windows = (cur.weekly_hours && cur.weekly_hours[d]) || [];
      days[d] = h('input', { name: `hours-${d}`, value: windows.map((w) => w.join('-')).join(', '), readonly: admin ? null : true, dir: 'ltr' });
      return field(t(`bk.day.${d}`), days[d], t('bk.hours_hint'));
    });
    const form = h('form', h('div.row', field(t('bk.timezone'), tz), field(t('bk.slot'), slot), field(t('bk.buffer'), buffer)),
      h('div.grid2', dayFields), admin ? h('div.actions', h('button#save-availability', { type: 'submit' }, t('common.save'))) : null);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const weekly_hours = {};
      for (const d of DAYS) {
        // A closed day is left out (the API takes a list of windows per day, never null).
        const v = days[d].value.trim();
        if (v) weekly_hours[d] = v.split(',').map((w) => w.trim().split('-').map((x) => x.trim()));
      }
      try {
        await api.put('/availability', { ...cur, timezone: tz.value.trim(), slot_minutes: Number(slot.value), buffer_minutes: Number(buffer.value), weekly_hours });
        notify(t('common.saved'));
        await loadAvailability();
      } catch (err) { fail(err); }
    });
    mount(avail, h('h2', t('bk.availability')), form);
  }

  await Promise.all([load(), loadAvailability()]);
}
