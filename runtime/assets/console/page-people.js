// A tenant's people (`#/users`: list, invite by email, change role, remove; pending invitations)
// and its API keys (`#/keys`: create — the secret is shown once —, revoke).

import { h, mount, field, select, skeleton, notify, fail, badge, table, copyText } from './ui.js';
import { fmtDate } from './i18n.js';

const ROLES = ['viewer', 'sales_agent', 'tenant_admin'];

export async function render(ctx) {
  if (ctx.route === 'keys') return keys(ctx);
  return users(ctx);
}

function roleSelect(t, value, attrs) {
  return select(ROLES.map((r) => [r, t(`role.${r}`)]), value, attrs);
}

async function users(ctx) {
  const { el, t, api } = ctx;
  const list = h('div#users', skeleton(3));
  const invites = h('div#invitations', skeleton(1));
  const email = h('input', { type: 'email', name: 'email', required: true, autocomplete: 'off' });
  const role = roleSelect(t, 'sales_agent', { name: 'role' });
  const form = h('form.panel#invite', h('h2', t('users.invite')),
    h('div.row', field(t('common.email'), email), field(t('role.label'), role), h('div.field', h('button', { type: 'submit' }, t('users.invite')))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api.post('/users/invitations', { email: email.value.trim(), role: role.value });
      notify(t('users.invited'));
      form.reset();
      await load();
    } catch (err) { fail(err); }
  });
  mount(el, h('div.page-head', h('h1', { tabindex: '-1' }, t('users.title'))), list, form, h('h2', t('users.invitations')), invites);

  async function load() {
    const [u, inv] = await Promise.all([api.get('/users'), api.get('/users/invitations').catch(() => ({ invitations: [] }))]);
    if (ctx.stale()) return;
    mount(list, table(t('users.title'), [t('common.name'), t('common.email'), t('role.label'), t('common.created'), t('common.actions')],
      (u.users || []).map((m) => {
        const sel = roleSelect(t, m.role, { 'aria-label': `${t('users.change_role')}: ${m.email}` });
        sel.addEventListener('change', async () => {
          try { await api.patch(`/users/${m.id}`, { role: sel.value }); notify(t('common.saved')); } catch (err) { fail(err); sel.value = m.role; }
        });
        return [h('bdi', { dir: 'auto' }, m.display_name || '—'), m.email, sel, fmtDate(m.member_since),
          h('button.small.danger', { type: 'button', 'aria-label': `${t('users.remove')}: ${m.email}`, onclick: async () => {
            if (!window.confirm(t('common.confirm_delete'))) return;
            try { await api.del(`/users/${m.id}`); await load(); } catch (err) { fail(err); }
          } }, t('users.remove'))];
      })));
    mount(invites, table(t('users.invitations'), [t('common.email'), t('role.label'), t('common.created'), ''],
      (inv.invitations || []).map((i) => [i.email, t(`role.${i.role}`), fmtDate(i.created_at),
        h('button.small.secondary', { type: 'button', onclick: async () => { try { await api.del(`/users/invitations/${i.id}`); await load(); } catch (err) { fail(err); } } }, t('keys.revoke'))])));
  }
  await load();
}

async function keys(ctx) {
  const { el, t, api } = ctx;
  const list = h('div#keys', skeleton(3));
  const secretBox = h('div#key-secret', { 'aria-live': 'polite' });
  const name = h('input', { name: 'name', required: true, maxlength: '100' });
  const role = roleSelect(t, 'viewer', { name: 'role' });
  const form = h('form.panel#new-key', h('h2', t('keys.new')),
    h('div.row', field(t('common.name'), name), field(t('role.label'), role), h('div.field', h('button', { type: 'submit' }, t('common.create')))), secretBox);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const r = await api.post('/keys', { name: name.value.trim(), role: role.value });
      const id = 'new-key-secret';
      mount(secretBox, h('div.notice', h('label', { for: id }, t('keys.secret')),
        h('div.copy-row', h('input', { id, readonly: true, value: r.secret, dir: 'ltr' }),
          h('button.small.secondary', { type: 'button', onclick: () => copyText(r.secret) }, t('common.copy')))));
      name.value = '';
      await load();
    } catch (err) { fail(err); }
  });
  mount(el, h('div.page-head', h('h1', { tabindex: '-1' }, t('keys.title'))), form, list);

  async function load() {
    const r = await api.get('/keys');
    if (ctx.stale()) return;
    mount(list, table(t('keys.title'), [t('common.name'), t('keys.prefix'), t('role.label'), t('common.created'), t('keys.last_used'), ''],
      (r.keys || []).map((k) => [h('bdi', { dir: 'auto' }, k.name), h('code', k.prefix), t(`role.${k.role}`), `${fmtDate(k.created_at)} · ${k.created_by}`,
        fmtDate(k.last_used_at),
        k.revoked_at ? badge(t('keys.revoked')) : h('button.small.danger', { type: 'button', 'aria-label': `${t('keys.revoke')}: ${k.name}`, onclick: async () => {
          if (!window.confirm(t('common.confirm_delete'))) return;
          try { await api.del(`/keys/${k.id}`); await load(); } catch (err) { fail(err); }
        } }, t('keys.revoke'))])));
  }
  await load();
}
