// Leads with their score and reasons, each with the state of its latest CRM delivery, and the
// CRM delivery log (tenant admins retry failed deliveries).

import { h, mount, skeleton, fail, badge, table } from './ui.js';
import { fmtDate } from './i18n.js';

const KIND = { delivered: 'ok', done: 'ok', pending: 'plain', failed: 'danger', dead: 'danger' };

export async function render(ctx) {
  const { el, t, api } = ctx;
  const leads = h('div#leads', skeleton(4));
  const deliveries = h('div#deliveries', skeleton(3));
  mount(el, h('div.page-head', h('h1', { tabindex: '-1' }, t('leads.title'))), leads, h('h2', t('leads.deliveries')), deliveries);

  async function load() {
    const [l, d] = await Promise.all([api.get('/leads'), api.get('/crm/deliveries')]);
    if (ctx.stale()) return;
    const latest = new Map();
    for (const x of d.deliveries || []) if (x.contact_id && !latest.has(x.contact_id)) latest.set(x.contact_id, x);
    mount(leads, table(t('leads.title'), [t('common.name'), t('leads.score'), t('leads.reasons'), t('inbox.channel'), t('leads.crm'), t('common.created')],
      (l.leads || []).map((x) => {
        const del = latest.get(x.contact_id);
        return [
          h('div', h('bdi', { dir: 'auto' }, x.name || x.email || x.phone || x.contact_id.slice(0, 8)),
            x.company ? h('div.muted', { dir: 'auto' }, x.company) : null,
            x.conversation_id ? h('div', h('a', { href: `#/inbox/${x.conversation_id}` }, t('esc.open'))) : null),
          badge(String(x.score ?? '—'), x.score >= 70 ? 'ok' : x.score >= 40 ? 'warn' : 'plain'),
          h('ul', (x.reasons || []).map((r) => h('li', { dir: 'auto' }, r))),
          x.channel,
          del ? badge(del.status, KIND[del.status]) : '—',
          fmtDate(x.created_at),
        ];
      })));
    mount(deliveries, table(t('leads.deliveries'), [t('common.created'), t('common.status'), t('leads.event'), t('ch.last_error'), ''],
      (d.deliveries || []).map((x) => [fmtDate(x.created_at), badge(x.status, KIND[x.status]), x.event || x.purpose, h('span', { dir: 'auto' }, x.last_error || '—'),
        ctx.can('tenant_admin') && ['failed', 'dead'].includes(x.status)
          ? h('button.small.secondary', { type: 'button', onclick: async () => { try { await api.post(`/crm/deliveries/${x.id}/retry`); await load(); } catch (e) { fail(e); } } }, t('leads.retry'))
          : ''])));
  }
  await load();
}
