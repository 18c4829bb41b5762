// The escalations queue: who waits for a human, why, the lead score and for how long.

import { h, mount, select, field, skeleton, table, badge } from './ui.js';
import { fmtDate, fmtDuration } from './i18n.js';

export async function render(ctx) {
  const { el, t, api } = ctx;
  const status = select([['', t('common.all')], ...['waiting', 'claimed', 'resolved'].map((s) => [s, t(`esc.status.${s}`)])], 'waiting', { name: 'status' });
  const body = h('div', skeleton(4));
  mount(el, h('div.page-head', h('h1', { tabindex: '-1' }, t('esc.title'))),
    h('div.filters', field(t('common.status'), status)), body);

  async function load() {
    const r = await api.get('/escalations', { status: status.value });
    if (ctx.stale()) return;
    const now = Date.now();
    mount(body, table(t('esc.title'),
      [t('common.created'), t('inbox.customer'), t('common.status'), t('esc.reason'), t('esc.score'), t('esc.waiting'), ''],
      (r.escalations || []).map((e) => [
        fmtDate(e.created_at),
        h('div', h('bdi', { dir: 'auto' }, e.contact_name || e.contact_external_id || '—'), e.channel_name ? h('div.muted', e.channel_name) : null),
        badge(t(`esc.status.${e.status}`), e.status === 'waiting' ? 'warn' : e.status === 'claimed' ? 'accent' : 'ok'),
        h('div', h('strong', e.reason), e.summary ? h('div.muted', { dir: 'auto' }, e.summary) : null),
        e.lead_score ?? '—',
        h('span', { dataset: { waiting: e.waiting_seconds ?? '' } }, fmtDuration(e.waiting_seconds ?? (e.status === 'waiting' ? (now - new Date(e.created_at).getTime()) / 1000 : null))),
        h('a', { href: `#/inbox/${e.conversation_id}` }, t('esc.open')),
      ])));
  }
  status.addEventListener('change', () => { mount(body, skeleton(4)); load().catch((e) => mount(body, h('p.error-box', e.message))); });
  await load();
  // Live: every `escalation` hint of the inbox's event stream re-reads the queue (debounced);
  // a slow timer keeps the waiting times current and stands in if the stream is refused.
  let soon = null;
  const refresh = () => { clearTimeout(soon); soon = setTimeout(() => load().catch(() => {}), 150); };
  let source = null;
  if (window.EventSource) {
    const q = ctx.tenant ? `?tenant=${encodeURIComponent(ctx.tenant)}` : '';
    source = new EventSource(`/api/v1/inbox/events${q}`);
    source.addEventListener('ready', () => { el.dataset.live = 'sse'; });
    source.addEventListener('escalation', refresh);
  }
  const timer = setInterval(() => load().catch(() => {}), 30000);
  ctx.onCleanup(() => { clearInterval(timer); clearTimeout(soon); if (source) source.close(); });
}
