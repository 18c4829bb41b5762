// The audit log, newest first: filters (actor, action, resource type, range) and pages that
// follow `next_cursor`; each entry's state before and after opens in place.

import { h, mount, field, skeleton, table } from './ui.js';
import { fmtDate } from './i18n.js';

export async function render(ctx) {
  const { el, t, api } = ctx;
  const inputs = {
    actor: h('input', { name: 'actor' }),
    action: h('input', { name: 'action', placeholder: 'prompt.publish' }),
    resource_type: h('input', { name: 'resource_type' }),
    from: h('input', { name: 'from', type: 'date' }),
    to: h('input', { name: 'to', type: 'date' }),
  };
  const form = h('form.filters#audit-filters',
    field(t('audit.actor'), inputs.actor), field(t('audit.action'), inputs.action),
    field(t('audit.resource'), inputs.resource_type), field(t('common.from'), inputs.from), field(t('common.to'), inputs.to),
    h('div.field', h('button', { type: 'submit' }, t('common.apply'))));
  const body = h('div#audit', skeleton(6, 40));
  const more = h('button.secondary#audit-more', { type: 'button', hidden: true }, t('common.more'));
  let cursor = null;
  let rows = [];
  mount(el, h('div.page-head', h('h1', { tabindex: '-1' }, t('audit.title'))), form, body, h('div.actions', more));

  // Dates are sent as RFC 3339 times (midnight UTC; `to` is the end of that day).
  const params = () => Object.fromEntries(Object.entries(inputs).map(([k, i]) => {
    const v = i.value.trim();
    if (!v || i.type !== 'date') return [k, v];
    const d = new Date(`${v}T00:00:00Z`);
    if (k === 'to') d.setUTCDate(d.getUTCDate() + 1);
    return [k, d.toISOString()];
  }));
  async function load(append) {
    const r = await api.get('/audit', { ...params(), limit: 50, cursor: append ? cursor : undefined });
    if (ctx.stale()) return;
    rows = append ? rows.concat(r.entries || []) : (r.entries || []);
    cursor = r.next_cursor;
    more.hidden = !cursor;
    mount(body, table(t('audit.title'), [t('audit.at'), t('audit.actor'), t('audit.action'), t('audit.resource'), t('common.status'), t('audit.details')],
      rows.map((e) => [fmtDate(e.at), h('bdi', { dir: 'auto' }, `${e.actor_label} (${e.actor_kind})`), h('code', e.action),
        `${e.resource_type || ''} ${e.resource_id || ''}`.trim() || '—', e.status ?? '—',
        (e.before || e.after) ? h('details', h('summary', t('audit.details')),
          e.before ? h('pre', `before: ${JSON.stringify(e.before, null, 2)}`) : null,
          e.after ? h('pre', `after: ${JSON.stringify(e.after, null, 2)}`) : null) : `${e.method || ''} ${e.path || ''}`])));
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); mount(body, skeleton(6, 40)); load(false).catch((err) => mount(body, h('p.error-box', err.message))); });
  more.addEventListener('click', () => load(true).catch(() => {}));
  await load(false);
}
