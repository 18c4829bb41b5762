// Tenants (platform administrators): the list, and a new tenant (with its web-chat channel).

import { h, mount, field, skeleton, notify, fail, table } from './ui.js';
import { fmtDate } from './i18n.js';

export async function render(ctx) {
  const { el, t, api } = ctx;
  const list = h('div#tenants', skeleton(3));
  const slug = h('input', { name: 'slug', required: true, pattern: '[a-z0-9-]+', maxlength: '60' });
  const name = h('input', { name: 'name', required: true, maxlength: '200' });
  const lang = h('input', { name: 'default_language', value: 'en', maxlength: '10' });
  const form = h('form.panel#new-tenant', h('h2', t('tenants.new')),
    h('div.row', field(t('tenants.slug'), slug, 'a-z, 0-9, -'), field(t('common.name'), name), field(t('tenants.language'), lang),
      h('div.field', h('button', { type: 'submit' }, t('common.create')))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api.post('/tenants', { slug: slug.value.trim(), name: name.value.trim(), default_language: lang.value.trim() || 'en' }, { scoped: false });
      notify(t('common.saved'));
      form.reset();
      await Promise.all([load(), ctx.reloadTenants()]);
    } catch (err) { fail(err); }
  });
  mount(el, h('div.page-head', h('h1', { tabindex: '-1' }, t('tenants.title'))), list, form);
  async function load() {
    const r = await api.get('/tenants', {}, { scoped: false });
    if (ctx.stale()) return;
    mount(list, table(t('tenants.title'), [t('tenants.slug'), t('common.name'), t('tenants.language'), t('common.created')],
      (r.tenants || []).map((x) => [h('code', x.slug), h('bdi', { dir: 'auto' }, x.name), x.default_language || '', fmtDate(x.created_at)])));
  }
  await load();
}
