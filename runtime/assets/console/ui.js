// Small DOM helpers shared by the pages: an element builder (text is always set as text, never
// parsed as HTML), labelled fields, skeletons that hold the space of what loads, and a status
// line for results.

import { t } from './i18n.js';

let uid = 0;
/** A fresh id for label/control pairs. */
export function nextId(prefix = 'f') { uid += 1; return `${prefix}-${uid}`; }

/**
 * h('button.primary', {onclick, type: 'button'}, 'Save'): tag with optional `.class`es and
 * `#id`; attributes (`on*` become listeners, `dataset`, booleans); children are nodes or text.
 */
export function h(spec, attrs, ...children) {
  if (attrs === null || typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  const m = spec.match(/^([a-z0-9-]+)?((?:[.#][\w-]+)*)$/i);
  const tag = (m && m[1]) || 'div';
  const ns = ['svg', 'path', 'line', 'polyline', 'rect', 'circle', 'text', 'g', 'title'].includes(tag)
    ? 'http://www.w3.org/2000/svg' : null;
  const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const part of ((m && m[2]) || '').match(/[.#][\w-]+/g) || []) {
    if (part[0] === '.') el.classList.add(part.slice(1)); else el.id = part.slice(1);
  }
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'class') el.classList.add(...String(v).split(/\s+/).filter(Boolean));
    else if (k === 'value' && !ns) el.value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'hidden') {
      el[k] = Boolean(v);
      if (v && k !== 'checked' && k !== 'selected') el.setAttribute(k, '');
    } else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A label and its control (the control gets an id; texts inputs get dir=auto). */
export function field(label, control, hint) {
  if (!control.id) control.id = nextId();
  if (['INPUT', 'TEXTAREA'].includes(control.tagName) && !['checkbox', 'radio', 'file'].includes(control.type)
      && !control.hasAttribute('dir')) {
    control.setAttribute('dir', 'auto');
  }
  const hintEl = hint ? h('small.hint', { id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  if (control.type === 'checkbox') {
    return h('div.field.check', control, h('label', { for: control.id }, label), hintEl);
  }
  return h('div.field', h('label', { for: control.id }, label), control, hintEl);
}

/** A select of `[value, text]` pairs. */
export function select(options, value, attrs = {}) {
  return h('select', attrs, options.map(([v, text]) => h('option', { value: v, selected: String(v) === String(value ?? '') }, text)));
}

/** Grey blocks of fixed height standing in for content being loaded (no layout shift). */
export function skeleton(lines = 3, height = 44) {
  return h('div.skeleton', { 'aria-busy': 'true', 'aria-label': t('app.loading') },
    Array.from({ length: lines }, () => {
      const b = h('div.skel-line');
      b.style.height = `${height}px`;
      return b;
    }));
}

/** The page's live status line: results of actions, errors. */
export function notify(text, kind = 'ok') {
  const el = document.getElementById('status');
  if (!el) return;
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { el.hidden = true; }, kind === 'error' ? 8000 : 4000);
}

/** Shows an API error on the status line (and returns it for `catch`). */
export function fail(err) {
  notify(err && err.message ? err.message : t('app.error'), 'error');
  return err;
}

/** A button that runs `action`, disabled while it runs; errors go to the status line. */
export function action(label, run, cls = '') {
  const b = h(`button${cls ? `.${cls.split(' ').join('.')}` : ''}`, { type: 'button' }, label);
  b.addEventListener('click', async () => {
    b.disabled = true;
    try { await run(b); } catch (e) { fail(e); } finally { b.disabled = false; }
  });
  return b;
}

/** A table with a caption, column headers and rows of cells. */
export function table(caption, headers, rows) {
  return h('div.table-wrap', { tabindex: '0', role: 'region', 'aria-label': caption },
    h('table',
      h('caption.sr-only', caption),
      h('thead', h('tr', headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', rows.length ? rows.map((r) => h('tr', r.map((c) => h('td', c))))
        : h('tr', h('td', { colspan: String(headers.length) }, t('common.none'))))));
}

/** A status badge. */
export function badge(text, kind) { return h(`span.badge.b-${kind || 'plain'}`, text); }

/** Copies text to the clipboard, falling back to selecting a hidden field. */
export async function copyText(text) {
  try { await navigator.clipboard.writeText(text); } catch {
    const ta = h('textarea', { 'aria-hidden': 'true' }, text);
    ta.classList.add('sr-only');
    document.body.append(ta);
    ta.select();
    document.execCommand('copy');
    ta.remove();
  }
  notify(t('common.copied'));
}

/** The page heading (focused after navigation so screen readers and keyboards start there). */
export function heading(text, ...extra) {
  return h('div.page-head', h('h1', { tabindex: '-1' }, text), extra);
}
