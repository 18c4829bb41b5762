// The inbox: conversations with filters, the transcript of the open one (channel and delivery
// status per message), and — for sales agents and up — take over, reply, hand back with a note,
// close. Live: `GET /inbox/events` (server-sent events) are hints to re-fetch the list and the
// open transcript; without that stream (an older server) the page re-fetches every few seconds.
// `#/inbox/<id>` opens a conversation without redrawing the page, so the keyboard focus stays.

import { h, mount, field, select, skeleton, notify, fail, badge, nextId } from './ui.js';
import { fmtDate } from './i18n.js';

const STATES = ['bot', 'waiting', 'human', 'closed'];
const POLL_MS = 4000;
const PAGE = 50;

function stateOf(c) {
  return c.status === 'closed' ? 'closed' : (c.handoff_state || 'bot');
}

function stateBadge(t, s) {
  const kind = { bot: 'plain', waiting: 'warn', human: 'accent', closed: 'plain' }[s] || 'plain';
  return badge(t(`inbox.state.${s}`), kind);
}

function deliveryBadge(d) {
  if (!d) return null;
  const kind = { delivered: 'ok', read: 'ok', sent: 'accent', failed: 'danger', dead: 'danger' }[d] || 'plain';
  return badge(d, kind);
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(16)}-${Math.random().toString(16).slice(2)}`;
}

export async function render(ctx) {
  const { el, t, api, args, can } = ctx;
  const filters = { channel: '', state: '', mine: false, language: '' };
  let selected = args[0] || null;
  let conversations = null;
  /** Conversations loaded with "load more", kept when the first page is fetched again. */
  let older = [];
  let lastListKey = '';
  let lastDetailKey = '';
  let detail = null;
  let source = null;
  let pollTimer = null;
  let refreshTimer = null;
  let alive = true;

  // ----- layout: filters and list | transcript -----
  const live = h('span.live#inbox-live', t('inbox.live'));
  const channelSel = select([['', t('common.all')]], '', { name: 'channel' });
  const stateSel = select([['', t('common.all')], ...STATES.map((s) => [s, t(`inbox.state.${s}`)])], '', { name: 'state' });
  const langSel = select([['', t('common.all')], ['en', 'English'], ['ar', 'العربية'], ['fr', 'Français']], '', { name: 'language' });
  const mine = h('input', { type: 'checkbox', name: 'mine' });
  const filterBox = h('form.filters', { 'aria-label': t('inbox.filters') },
    field(t('inbox.channel'), channelSel), field(t('inbox.state'), stateSel),
    field(t('inbox.language'), langSel), can('sales_agent') ? field(t('inbox.mine'), mine) : null);
  filterBox.addEventListener('submit', (e) => e.preventDefault());
  filterBox.addEventListener('change', () => {
    filters.channel = channelSel.value;
    filters.state = stateSel.value;
    filters.language = langSel.value;
    filters.mine = mine.checked;
    lastListKey = '';
    older = [];
    mount(list, skeleton(4, 76));
    loadList();
  });
  const listHeading = h('h2#inbox-list-heading', t('inbox.list'));
  const list = h('ul.conv-list#conv-list', { 'aria-labelledby': 'inbox-list-heading' }, skeleton(4, 76));
  const more = h('button.secondary#inbox-more', { type: 'button', hidden: true }, t('common.more'));
  more.addEventListener('click', () => loadOlder().catch(fail));
  const listPane = h('section.list-pane', { 'aria-labelledby': 'inbox-list-heading' }, filterBox, listHeading, list, h('div.actions', more));

  const transcriptHead = h('div.transcript-head');
  const messages = h('ol.messages#messages', { 'aria-label': t('inbox.transcript'), 'aria-live': 'polite' });
  const replyBox = h('textarea', { name: 'reply', rows: '3', maxlength: '4000', dir: 'auto' });
  const sendBtn = h('button#send-reply', { type: 'submit' }, t('inbox.send'));
  const composer = h('form.composer#composer', { hidden: true },
    field(t('inbox.reply_label'), replyBox), h('div.actions', sendBtn));
  const transcript = h('section.transcript#transcript', { 'aria-label': t('inbox.transcript') },
    transcriptHead, messages, composer);
  const root = h('div.inbox', listPane, transcript);

  mount(el, h('div.page-head', h('h1', { tabindex: '-1' }, t('inbox.title')), live), root);
  if (ctx.readonly) el.prepend(h('p.notice', t('common.readonly')));

  composer.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = replyBox.value.trim();
    if (!text || !selected) return;
    sendBtn.disabled = true;
    try {
      await api.post(`/conversations/${selected}/messages`, { text, client_message_id: uuid() });
      replyBox.value = '';
      await loadDetail(true);
      loadList();
    } catch (err) { fail(err); } finally { sendBtn.disabled = false; }
  });
  replyBox.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); composer.requestSubmit(); }
  });

  // ----- data -----
  api.get('/channels').then((r) => {
    const opts = [['', t('common.all')], ...(r.channels || []).map((c) => [c.id, `${c.name} (${c.kind})`])];
    mount(channelSel, opts.map(([v, x]) => h('option', { value: v }, x)));
  }).catch(() => {});

  function matches(c) {
    // The server filters; this keeps the view right with servers that ignore a filter.
    if (filters.state && stateOf(c) !== filters.state) return false;
    if (filters.channel && c.channel_id && c.channel_id !== filters.channel) return false;
    if (filters.language && c.language && c.language !== filters.language) return false;
    return true;
  }

  function listParams() {
    const params = { limit: PAGE };
    if (filters.state) params.state = filters.state;
    if (filters.channel) params.channel = filters.channel;
    if (filters.language) params.language = filters.language;
    if (filters.mine) params.assigned = 'me';
    return params;
  }

  /** The first page again (live refreshes), followed by the older pages already loaded. */
  async function loadList() {
    try {
      const r = await api.get('/conversations', listParams());
      if (!alive) return;
      const first = r.conversations || [];
      const ids = new Set(first.map((c) => c.id));
      conversations = first.concat(older.filter((c) => !ids.has(c.id))).filter(matches);
      if (!older.length) more.hidden = first.length < PAGE;
      const key = JSON.stringify(conversations);
      if (key !== lastListKey) { lastListKey = key; drawList(); }
    } catch (err) {
      if (alive && conversations === null) mount(list, h('li.error-box', err.message));
    }
  }

  /** The next page: conversations whose last message is older than the last one shown. */
  async function loadOlder() {
    const last = conversations && conversations[conversations.length - 1];
    if (!last) return;
    const r = await api.get('/conversations', { ...listParams(), before: last.last_message_at, before_id: last.id });
    const page = r.conversations || [];
    older = older.concat(page);
    more.hidden = page.length < PAGE;
    await loadList();
  }

  function drawList() {
    const focusedId = list.contains(document.activeElement) ? document.activeElement.dataset.id : null;
    if (!conversations.length) { mount(list, h('li.empty', t('inbox.empty'))); return; }
    mount(list, conversations.map((c) => {
      const s = stateOf(c);
      const name = (c.contact && (c.contact.name || c.contact.email || c.contact.external_id)) || c.id.slice(0, 8);
      const last = c.last_message;
      const btn = h('button.conv', {
        type: 'button', dataset: { id: c.id, state: s },
        'aria-current': c.id === selected ? 'true' : 'false',
        onclick: () => open(c.id),
      },
      h('span.line1', h('bdi', { dir: 'auto' }, name), h('span.muted', fmtDate(c.last_message_at, { dateStyle: 'short', timeStyle: 'short' }))),
      last && last.text ? h('span.preview', { dir: 'auto' }, last.text) : null,
      h('span.meta', stateBadge(t, s), badge(c.channel_name || c.channel),
        c.language ? badge(c.language) : null,
        c.escalation && c.escalation.lead_score != null ? badge(`${t('esc.score')} ${c.escalation.lead_score}`, 'accent') : null,
        c.waiting_since ? badge(`${t('inbox.waiting_since')} ${fmtDate(c.waiting_since, { timeStyle: 'short' })}`, 'warn') : null,
        c.assigned_to ? badge(`${t('inbox.assigned')} ${c.assigned_to}`) : null));
      return h('li', btn);
    }));
    if (focusedId) {
      const again = list.querySelector(`button[data-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
  }

  function open(id) {
    if (id === selected) { loadDetail(true); return; }
    location.hash = `#/inbox/${encodeURIComponent(id)}`;
  }

  async function loadDetail(force) {
    if (!selected) {
      lastDetailKey = '';
      root.classList.remove('open');
      mount(transcriptHead, h('p.muted', t('inbox.pick')));
      messages.replaceChildren();
      composer.hidden = true;
      return;
    }
    root.classList.add('open');
    const id = selected;
    try {
      const d = await api.get(`/conversations/${id}`);
      if (!alive || id !== selected) return;
      const key = JSON.stringify(d);
      if (!force && key === lastDetailKey) return;
      lastDetailKey = key;
      detail = d;
      drawDetail();
    } catch (err) {
      if (alive && id === selected) mount(transcriptHead, h('p.error-box', err.message));
    }
  }

  function drawDetail() {
    const d = detail;
    const s = stateOf(d);
    const name = (d.contact && (d.contact.name || d.contact.email || d.contact.external_id)) || '';
    const tools = [];
    if (can('sales_agent') && d.status !== 'closed') {
      if (d.handoff_state !== 'human') {
        tools.push(h('button#claim', { type: 'button', onclick: () => act('claim', {}, 'inbox.claimed') }, t('inbox.claim')));
      }
      if (d.handoff_state === 'human') {
        const noteId = nextId('note');
        const note = h('input', { id: noteId, name: 'note', dir: 'auto', maxlength: '2000' });
        tools.push(h('div.row', field(t('inbox.note'), note),
          h('button.secondary#handback', { type: 'button', onclick: () => act('handback', note.value.trim() ? { note: note.value.trim() } : {}, 'inbox.handed_back') }, t('inbox.handback'))));
      }
      tools.push(h('button.ghost#close-conversation', { type: 'button', onclick: () => act('close', undefined, 'inbox.closed') }, t('inbox.close')));
    }
    const esc = d.escalation;
    mount(transcriptHead,
      h('div',
        h('a.back-link', { href: '#/inbox' }, `← ${t('inbox.back')}`),
        h('h2#transcript-title', h('bdi', { dir: 'auto' }, name)),
        h('div.actions', stateBadge(t, s), badge(d.channel), esc ? badge(`${t('inbox.escalation')}: ${esc.reason}`, 'warn') : null),
        esc && esc.summary ? h('p.muted', { dir: 'auto' }, esc.summary) : null),
      h('div.actions#conversation-actions', tools));
    mount(messages, (d.messages || []).map((m) => h(`li.msg.${m.role}`, { dataset: { role: m.role } },
      h('div.text', { dir: 'auto' }, m.text),
      h('div.meta',
        h('span', t(`inbox.role.${m.role}`)),
        m.author ? h('bdi', { dir: 'auto' }, m.author) : null,
        h('time', { datetime: m.created_at }, fmtDate(m.created_at, { timeStyle: 'short' })),
        h('span', d.channel),
        m.delivery ? deliveryBadge(m.delivery) : null))));
    // Redrawn only when something changed: the newest message is what to see.
    messages.scrollTop = messages.scrollHeight;
    composer.hidden = !(can('sales_agent') && d.status !== 'closed');
    for (const b of list.querySelectorAll('button.conv')) b.setAttribute('aria-current', b.dataset.id === selected ? 'true' : 'false');
  }

  async function act(what, body, okKey) {
    try {
      await api.post(`/conversations/${selected}/${what}`, body);
      notify(t(okKey));
      await loadDetail(true);
      await loadList();
    } catch (err) { fail(err); }
  }

  /** Re-fetches soon, coalescing bursts of events. */
  function refreshSoon(detailToo) {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => { loadList(); if (detailToo) loadDetail(false); }, 150);
  }

  function startPolling() {
    if (pollTimer || !alive) return;
    live.textContent = t('inbox.polling');
    pollTimer = setInterval(() => { loadList(); loadDetail(false); }, POLL_MS);
  }

  function connect() {
    if (!window.EventSource) { startPolling(); return; }
    const q = ctx.tenant ? `?tenant=${encodeURIComponent(ctx.tenant)}` : '';
    source = new EventSource(`/api/v1/inbox/events${q}`);
    source.addEventListener('ready', () => { live.textContent = t('inbox.live'); el.dataset.live = 'sse'; });
    source.addEventListener('conversation', (e) => {
      let data = {};
      try { data = JSON.parse(e.data); } catch { /* a hint all the same */ }
      refreshSoon(!data.conversation_id || data.conversation_id === selected);
    });
    source.addEventListener('escalation', (e) => {
      let data = {};
      try { data = JSON.parse(e.data); } catch { /* a hint all the same */ }
      refreshSoon(!data.conversation_id || data.conversation_id === selected);
    });
    source.onerror = () => {
      // A closed stream (404 on older servers, a refusal) is not retried by the browser: poll.
      if (source.readyState === EventSource.CLOSED) { source = null; el.dataset.live = 'poll'; startPolling(); }
    };
  }

  ctx.onCleanup(() => {
    alive = false;
    if (source) source.close();
    clearInterval(pollTimer);
    clearTimeout(refreshTimer);
  });

  await loadList();
  await loadDetail(true);
  connect();
  return {
    update(nextArgs) {
      selected = nextArgs[0] || null;
      lastDetailKey = '';
      loadDetail(true);
      for (const b of list.querySelectorAll('button.conv')) b.setAttribute('aria-current', b.dataset.id === selected ? 'true' : 'false');
    },
  };
}
