// The console's shell: who is signed in (`GET /auth/me`), which tenant is chosen, which pages
// the role may open, the hash router (`#/inbox`, `#/inbox/<conversation id>`, …) and the
// language switch. Pages are ES modules loaded on first use; each exports `render(ctx)` and may
// return a cleanup function (closing an EventSource, stopping a timer).

import * as api from './api.js';
import { t, setLang, getLang, initialLang, onLangChange } from './i18n.js';
import { h, mount, select, notify, skeleton } from './ui.js';

/** How much each role may do; a page or an action names the least level it needs. */
export const LEVEL = { viewer: 1, sales_agent: 2, tenant_admin: 3, platform_admin: 4 };

/** Every page: its route, the least role that sees it, its module. */
const PAGES = [
  { route: 'inbox', min: 'viewer', load: () => import('./page-inbox.js') },
  { route: 'escalations', min: 'viewer', load: () => import('./page-escalations.js') },
  { route: 'bookings', min: 'viewer', load: () => import('./page-bookings.js') },
  { route: 'leads', min: 'viewer', load: () => import('./page-leads.js') },
  { route: 'analytics', min: 'viewer', load: () => import('./page-analytics.js') },
  { route: 'prompts', min: 'tenant_admin', load: () => import('./page-prompts.js') },
  { route: 'knowledge', min: 'tenant_admin', load: () => import('./page-knowledge.js') },
  { route: 'channels', min: 'tenant_admin', load: () => import('./page-channels.js') },
  { route: 'users', min: 'tenant_admin', load: () => import('./page-people.js') },
  { route: 'keys', min: 'tenant_admin', load: () => import('./page-people.js') },
  { route: 'audit', min: 'tenant_admin', load: () => import('./page-audit.js') },
  { route: 'tenants', min: 'platform_admin', load: () => import('./page-tenants.js') },
];
const PUBLIC = { signin: () => import('./page-signin.js'), forgot: () => import('./page-signin.js') };
const TENANT_STORE = 'sb.console.tenant';

const state = {
  me: null,
  /** `[{slug, name, role}]` the person may choose from. */
  tenants: [],
  tenant: null,
  role: null,
  cleanup: null,
  /** The page on screen if it follows its own sub-routes: `{route, update, tenant, lang}`. */
  current: null,
  renderSeq: 0,
};

const main = () => document.getElementById('main');

function level() { return LEVEL[state.role] || 0; }
function can(min) { return level() >= (LEVEL[min] || 99); }
function visiblePages() { return PAGES.filter((p) => can(p.min)); }

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { route: parts[0] || '', args: parts.slice(1), query: new URLSearchParams(query) };
}

export function go(hash) {
  if (location.hash === hash) render(); else location.hash = hash;
}

/** Who is signed in, and the tenants they may pick from. `false` when nobody is. */
async function loadSession() {
  try {
    state.me = await api.get('/auth/me', {}, { scoped: false });
  } catch (e) {
    if (e.status === 401) { state.me = null; return false; }
    throw e;
  }
  if (state.me.platform_admin) {
    const list = await api.get('/tenants', {}, { scoped: false });
    state.tenants = (list.tenants || []).map((x) => ({ id: x.id, slug: x.slug, name: x.name, role: 'platform_admin' }));
  } else {
    state.tenants = (state.me.memberships || []).map((m) => ({ id: m.tenant_id, slug: m.slug || m.tenant_id, name: m.name || m.slug, role: m.role }));
  }
  // A link may name the tenant (`/console?tenant=<id or slug>#/inbox/<id>`, as escalation
  // emails do); else the last one chosen in this browser.
  const linked = new URLSearchParams(location.search).get('tenant');
  let saved = null;
  try { saved = localStorage.getItem(TENANT_STORE); } catch { /* private mode */ }
  const pick = (linked && state.tenants.find((x) => x.slug === linked || x.id === linked))
    || state.tenants.find((x) => x.slug === saved) || state.tenants[0] || null;
  chooseTenant(pick ? pick.slug : null);
  return true;
}

function chooseTenant(slug) {
  const found = state.tenants.find((x) => x.slug === slug) || null;
  state.tenant = found ? found.slug : null;
  state.role = found ? found.role : (state.me && state.me.platform_admin ? 'platform_admin' : null);
  api.setTenant(state.tenant);
  try { if (state.tenant) localStorage.setItem(TENANT_STORE, state.tenant); } catch { /* private mode */ }
  document.body.dataset.role = state.role || '';
}

function drawTop() {
  const tools = document.getElementById('top-tools');
  const langBtn = h('button.ghost#lang-switch', {
    type: 'button', lang: getLang() === 'ar' ? 'en' : 'ar',
    'aria-label': `${t('lang.label')}: ${t('lang.switch')}`,
    onclick: () => setLang(getLang() === 'ar' ? 'en' : 'ar'),
  }, t('lang.switch'));
  if (!state.me) { mount(tools, langBtn); return; }
  const who = state.me.user ? (state.me.user.display_name || state.me.user.email) : (state.me.key ? state.me.key.name : '');
  const items = [];
  if (state.tenants.length) {
    const sel = select(state.tenants.map((x) => [x.slug, x.name || x.slug]), state.tenant, { id: 'tenant-switch' });
    sel.addEventListener('change', () => { chooseTenant(sel.value); state.current = null; drawTop(); drawNav(); render(); });
    items.push(h('div.tenant', h('label', { for: 'tenant-switch' }, t('tenant.label')), sel));
  }
  items.push(h('span.who', h('bdi', { dir: 'auto' }, who), ' · ', h('span#role-name', t(`role.${state.role}`))));
  items.push(langBtn);
  items.push(h('button.ghost#sign-out', {
    type: 'button',
    onclick: async () => {
      try { await api.post('/auth/sign-out'); } catch { /* the session may already be gone */ }
      state.me = null; state.role = null;
      drawTop(); drawNav();
      go('#/signin');
    },
  }, t('signin.out')));
  mount(tools, items);
}

function drawNav() {
  const nav = document.getElementById('nav');
  nav.setAttribute('aria-label', t('nav.label'));
  if (!state.me) { nav.hidden = true; nav.replaceChildren(); return; }
  nav.hidden = false;
  const { route } = parseHash();
  mount(nav, h('ul', visiblePages().map((p) => h('li', h('a', {
    href: `#/${p.route}`, 'data-route': p.route,
    'aria-current': p.route === route ? 'page' : null,
  }, t(`nav.${p.route}`))))));
  // On narrow screens the navigation scrolls sideways: keep the current page's entry in view.
  const current = nav.querySelector('[aria-current="page"]');
  if (current && nav.scrollWidth > nav.clientWidth) {
    nav.scrollLeft += current.getBoundingClientRect().left - nav.getBoundingClientRect().left - 8;
  }
}

/** Draws the page of the current hash. */
export async function render() {
  const { route, args, query } = parseHash();
  // A page that can follow its own sub-routes (the inbox opening a conversation) keeps its
  // state, its live stream and the keyboard focus.
  if (state.me && state.current && state.current.route === route && state.current.update
      && state.current.tenant === state.tenant && state.current.lang === getLang()) {
    drawNav();
    state.current.update(args, query);
    return;
  }
  const seq = ++state.renderSeq;
  state.current = null;
  if (state.cleanup) { try { state.cleanup(); } catch { /* ignore */ } state.cleanup = null; }
  const el = main();
  delete el.dataset.live; // a page that follows the event stream says so itself
  let loader;
  let page = null;
  if (!state.me) {
    loader = PUBLIC[route] || PUBLIC.signin;
  } else if (route === 'signin' || route === 'forgot' || route === '') {
    const first = visiblePages()[0];
    if (first) { location.replace(`#/${first.route}`); return; }
    mount(el, h('p.empty', state.tenants.length ? t('app.forbidden') : t('tenant.none')));
    return;
  } else {
    page = PAGES.find((p) => p.route === route);
    if (!page) { mount(el, h('p.empty', t('app.notfound'))); drawNav(); return; }
    if (!can(page.min)) { mount(el, h('p.empty', t('app.forbidden'))); drawNav(); return; }
    loader = page.load;
  }
  drawNav();
  document.body.dataset.page = route || 'signin';
  // The space of the page is held while its module and data load.
  mount(el, h('div.page-head', h('div.skel-line.skel-title')), skeleton(4));
  const mod = await loader();
  if (seq !== state.renderSeq) return;
  const cleanups = [];
  const ctx = {
    el, route: route || 'signin', args, query, t, api, go, can,
    role: state.role, tenant: state.tenant, me: state.me,
    readonly: !can('sales_agent'),
    onCleanup: (f) => cleanups.push(f),
    /** True once the user has left this page (late answers are then dropped). */
    stale: () => seq !== state.renderSeq,
    // After signing in: the page the link named (an escalation email's conversation), else
    // the first page the role may open.
    signedIn: async () => {
      await loadSession(); drawTop(); drawNav();
      if (PUBLIC[route] || route === '') go('#/'); else render();
    },
    /** Reads the tenants again (after one was created) and redraws the switcher. */
    reloadTenants: async () => { await loadSession(); drawTop(); },
  };
  state.cleanup = () => cleanups.forEach((f) => f());
  try {
    const handle = await mod.render(ctx);
    if (handle && handle.update && seq === state.renderSeq) {
      state.current = { route, update: handle.update, tenant: state.tenant, lang: getLang() };
    }
  } catch (e) {
    if (seq !== state.renderSeq) return;
    mount(el, h('div.error-box', { role: 'alert' }, h('p', t('app.error')), h('p', h('code', e.message || String(e))),
      h('button', { type: 'button', onclick: () => render() }, t('app.retry'))));
  }
  if (seq !== state.renderSeq) return;
  const h1 = el.querySelector('h1');
  if (h1 && document.activeElement === document.body) h1.focus({ preventScroll: true });
}

async function boot() {
  setLang(initialLang());
  api.onUnauthorized(() => {
    if (!state.me) return;
    state.me = null; state.role = null;
    drawTop(); drawNav();
    notify(t('signin.title'), 'error');
    go('#/signin');
  });
  document.getElementById('skip').addEventListener('click', (e) => {
    e.preventDefault();
    main().focus();
  });
  onLangChange(() => {
    document.getElementById('skip').textContent = t('app.skip');
    state.current = null;
    drawTop(); drawNav(); render();
  });
  window.addEventListener('hashchange', () => render());
  try {
    await loadSession();
  } catch (e) {
    mount(main(), h('div.error-box', { role: 'alert' }, t('app.error'), ' ', e.message));
    return;
  }
  document.getElementById('skip').textContent = t('app.skip');
  drawTop();
  render();
}

boot();
