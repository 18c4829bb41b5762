// Channels: each with its webhook URL (and a copy button), health (`/channels/{id}/health`:
// credentials checked with the provider, last inbound, last error), enable/disable, delete; and
// a form per kind with that kind's settings (secrets are write-only: sealed, never shown).

import { h, mount, field, select, skeleton, notify, fail, badge, copyText } from './ui.js';
import { fmtDate } from './i18n.js';

/** Each kind's settings: [name, type, options]; type `secret` fields are sealed at rest. */
export const KINDS = {
  webchat: [],
  whatsapp: [['phone_number_id', 'text'], ['app_secret', 'secret'], ['access_token', 'secret'], ['verify_token', 'secret'],
    ['template_name', 'text'], ['template_language', 'text', 'en_US'], ['api_base_url', 'url'], ['api_version', 'text', 'v21.0']],
  telegram: [['bot_token', 'secret'], ['secret_token', 'secret'], ['mode', ['webhook', 'polling']], ['api_url', 'url']],
  sms: [['account_sid', 'text'], ['auth_token', 'secret'], ['from_number', 'text'], ['messaging_service_sid', 'text'],
    ['messages_per_second', 'number', '1'], ['api_base_url', 'url']],
  voice: [['account_sid', 'text'], ['auth_token', 'secret'], ['transcript_secret', 'secret'], ['language', 'text', 'en-US'],
    ['voice', 'text'], ['greeting', 'text'], ['reprompt', 'text'], ['holding_phrase', 'text'], ['answer_budget_ms', 'number', '9000']],
  email: [['from_address', 'email'], ['from_name', 'text'], ['smtp_host', 'text'], ['smtp_port', 'number', '587'],
    ['smtp_security', ['starttls', 'tls', 'none']], ['smtp_username', 'text'], ['smtp_password', 'secret'],
    ['webhook_signing_key', 'secret'], ['webhook_basic_auth', 'secret'], ['webhook_max_age_secs', 'number', '300'],
    ['default_subject', 'text'], ['imap_host', 'text'], ['imap_port', 'number', '993'], ['imap_security', ['tls', 'none']],
    ['imap_username', 'text'], ['imap_password', 'secret'], ['imap_mailbox', 'text', 'INBOX'], ['imap_poll_secs', 'number', '30']],
};

export async function render(ctx) {
  const { el, t, api } = ctx;
  const admin = ctx.can('tenant_admin');
  const cards = h('div.cards#channel-cards', skeleton(2, 180));
  const form = h('section.panel#new-channel');
  mount(el, h('div.page-head', h('h1', { tabindex: '-1' }, t('ch.title'))), cards, admin ? form : null);

  async function load() {
    const r = await api.get('/channels');
    if (ctx.stale()) return;
    mount(cards, (r.channels || []).map(card));
  }

  function card(c) {
    const health = h('dl.kv',
      h('dt', t('ch.last_inbound')), h('dd', c.health && c.health.last_inbound_at ? fmtDate(c.health.last_inbound_at) : t('ch.never')),
      h('dt', t('ch.last_error')), h('dd', { dir: 'auto' }, c.health && c.health.last_error ? `${c.health.last_error} (${fmtDate(c.health.last_error_at)})` : '—'),
      c.secrets_set && c.secrets_set.length ? [h('dt', t('ch.secrets_set')), h('dd', c.secrets_set.join(', '))] : null);
    const urlId = `webhook-${c.id}`;
    const url = c.webhook_url || (c.kind === 'webchat' ? `${location.origin}/chat/${c.id}` : null);
    return h('article.card', { dataset: { channel: c.id, kind: c.kind } },
      h('div.row', h('h2', { dir: 'auto' }, c.name), badge(c.kind, 'accent'), badge(c.enabled ? t('common.enabled') : t('common.disabled'), c.enabled ? 'ok' : 'plain')),
      url ? h('div.field', h('label', { for: urlId }, c.webhook_url ? t('ch.webhook') : t('ch.chat_url')),
        h('div.copy-row', h('input', { id: urlId, readonly: true, value: url, dir: 'ltr' }),
          h('button.small.secondary', { type: 'button', 'aria-label': `${t('common.copy')}: ${t('ch.webhook')}`, onclick: () => copyText(url) }, t('common.copy')))) : null,
      health,
      h('div.actions',
        h('button.small.secondary', { type: 'button', onclick: async (e) => {
          const b = e.currentTarget;
          b.disabled = true;
          try {
            const x = await api.get(`/channels/${c.id}/health`);
            const cred = x.credentials || {};
            health.append(h('dt', t('ch.credentials')), h('dd', { dir: 'auto' }, badge(cred.ok ? 'OK' : '✕', cred.ok ? 'ok' : 'danger'), cred.detail ? ` ${cred.detail}` : ''));
          } catch (err) { fail(err); } finally { b.disabled = false; }
        } }, t('ch.check')),
        admin ? h('button.small.secondary', { type: 'button', onclick: async () => {
          try { await api.patch(`/channels/${c.id}`, { enabled: !c.enabled }); await load(); } catch (err) { fail(err); }
        } }, c.enabled ? t('common.disable') : t('common.enable')) : null,
        admin ? h('button.small.danger', { type: 'button', onclick: async () => {
          if (!window.confirm(t('common.confirm_delete'))) return;
          try { await api.del(`/channels/${c.id}`); await load(); } catch (err) { fail(err); }
        } }, t('common.delete')) : null));
  }

  function drawForm() {
    const kind = select(Object.keys(KINDS).map((k) => [k, k]), 'webchat', { name: 'kind' });
    const name = h('input', { name: 'name', required: true, maxlength: '200' });
    const settings = h('div.grid2');
    const drawSettings = () => mount(settings, KINDS[kind.value].map(([key, type, dflt]) => {
      let input;
      if (Array.isArray(type)) input = select([['', '—'], ...type.map((o) => [o, o])], '', { name: key });
      else input = h('input', { name: key, type: type === 'secret' ? 'password' : type, autocomplete: 'off', placeholder: dflt || '' });
      input.dataset.setting = key;
      input.dataset.type = Array.isArray(type) ? 'choice' : type;
      return field(key, input, type === 'secret' ? t('ch.secret_hint') : null);
    }));
    kind.addEventListener('change', drawSettings);
    drawSettings();
    const f = h('form', field(t('common.kind'), kind), field(t('common.name'), name), settings,
      h('div.actions', h('button#create-channel', { type: 'submit' }, t('common.create'))));
    f.addEventListener('submit', async (e) => {
      e.preventDefault();
      const config = {};
      for (const input of settings.querySelectorAll('[data-setting]')) {
        const v = input.value.trim();
        if (!v) continue;
        config[input.dataset.setting] = input.dataset.type === 'number' ? Number(v) : v;
      }
      try {
        const r = await api.post('/channels', { kind: kind.value, name: name.value.trim(), config });
        notify(r.channel && r.channel.webhook_url ? `${t('ch.webhook')}: ${r.channel.webhook_url}` : t('common.saved'));
        f.reset();
        drawSettings();
        await load();
      } catch (err) { fail(err); }
    });
    mount(form, h('h2', t('ch.new')), f);
  }

  if (admin) drawForm();
  await load();
}
