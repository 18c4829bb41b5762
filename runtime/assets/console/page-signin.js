// Signing in (`POST /auth/sign-in` sets the session cookie) and asking for a password-reset link
// (`POST /auth/password-reset`, which answers the same whether or not the account exists).

import { h, mount, field } from './ui.js';

export async function render(ctx) {
  const { el, t, api } = ctx;
  const message = h('p#signin-message', { role: 'alert', 'aria-live': 'assertive' });
  if (ctx.route === 'forgot') {
    const email = h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true });
    const form = h('form.panel', { novalidate: false },
      field(t('signin.email'), email),
      h('button', { type: 'submit' }, t('forgot.submit')),
      message,
      h('p', h('a', { href: '#/signin' }, t('signin.back'))));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        await api.post('/auth/password-reset', { email: email.value.trim() }, { scoped: false });
        message.className = 'muted';
        message.textContent = t('forgot.sent');
      } catch (err) {
        message.className = 'error-box';
        message.textContent = err.message;
      }
    });
    mount(el, h('div.signin', h('div.page-head', h('h1', { tabindex: '-1' }, t('forgot.title'))), form));
    return;
  }
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit' }, t('signin.submit'));
  const form = h('form.panel',
    field(t('signin.email'), email),
    field(t('signin.password'), password),
    h('div.row', submit),
    message,
    h('p', h('a', { href: '#/forgot' }, t('signin.forgot'))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    message.textContent = '';
    message.className = '';
    try {
      await api.post('/auth/sign-in', { email: email.value.trim(), password: password.value }, { scoped: false });
      await ctx.signedIn();
    } catch (err) {
      message.className = 'error-box';
      message.textContent = err.status === 401 ? t('signin.failed') : err.status === 429 ? t('signin.throttled') : err.message;
      submit.disabled = false;
      password.focus();
    }
  });
  mount(el, h('div.signin', h('div.page-head', h('h1', { tabindex: '-1' }, t('signin.title'))), form));
  email.focus();
}
