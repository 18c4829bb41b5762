// Prompts: the versions (newest first), an editor for drafts with the template variables,
// a side-by-side view of `GET /prompts/diff`, publish and roll back, and a playground that runs
// a message through `POST /prompts/preview` (the reply, the retrieved passages with their
// scores, every tool call and the tokens) — nothing reaches a customer.

import { h, mount, field, select, skeleton, notify, fail, badge } from './ui.js';
import { fmtDate, fmtNumber } from './i18n.js';

const VARIABLES = ['{{ tenant.name }}', '{{ customer.name }}', '{{ channel }}', '{{ local_time }}',
  '{{ language }}', '{{ has_knowledge }}', '{{ knowledge_titles }}'];
const FIELDS = ['persona', 'instructions', 'guardrails'];
const CHANNELS = ['webchat', 'whatsapp', 'telegram', 'sms', 'voice', 'email'];

/** Splits a unified diff into aligned left/right lines for a side-by-side view. */
export function sideBySide(unified) {
  const left = [];
  const right = [];
  let dels = [];
  let adds = [];
  const flush = () => {
    const n = Math.max(dels.length, adds.length);
    for (let i = 0; i < n; i += 1) {
      left.push(dels[i] !== undefined ? { cls: 'del', text: dels[i] } : { cls: '', text: '' });
      right.push(adds[i] !== undefined ? { cls: 'add', text: adds[i] } : { cls: '', text: '' });
    }
    dels = []; adds = [];
  };
  for (const line of (unified || '').split('\n')) {
    if (line.startsWith('---') || line.startsWith('+++')) continue;
    if (line.startsWith('@@')) { flush(); left.push({ cls: 'hunk', text: line }); right.push({ cls: 'hunk', text: line }); continue; }
    if (line.startsWith('-')) { dels.push(line.slice(1)); continue; }
    if (line.startsWith('+')) { adds.push(line.slice(1)); continue; }
    flush();
    const text = line.startsWith(' ') ? line.slice(1) : line;
    left.push({ cls: '', text });
    right.push({ cls: '', text });
  }
  flush();
  return { left, right };
}

export async function render(ctx) {
  const { el, t, api } = ctx;
  let data = null;
  let current = null; // the version shown in the editor (null: the built-in prompt)
  const versionsList = h('ul.versions#versions', { 'aria-label': t('prompts.versions') }, skeleton(4, 40));
  const editor = h('section.editor.panel#prompt-editor', skeleton(3, 120));
  const diffBox = h('section.panel#prompt-diff');
  const play = h('section.panel#playground');
  mount(el, h('div.page-head', h('h1', { tabindex: '-1' }, t('prompts.title'))),
    h('div.prompts',
      h('aside', h('h2', t('prompts.versions')), versionsList),
      h('div', editor, diffBox, play)));

  async function load(selectId) {
    data = await api.get('/prompts');
    if (ctx.stale()) return;
    const versions = data.versions || [];
    current = versions.find((v) => v.id === selectId)
      || versions.find((v) => v.status === 'draft')
      || versions.find((v) => v.version === data.published_version) || null;
    drawVersions();
    drawEditor();
    drawDiff();
    drawPlayground();
  }

  function drawVersions() {
    const items = (data.versions || []).map((v) => h('li', h('button', {
      type: 'button', dataset: { version: v.version }, 'aria-current': current && current.id === v.id ? 'true' : 'false',
      onclick: () => { current = v; drawVersions(); drawEditor(); drawDiff(); drawPlayground(); },
    }, h('span', `v${v.version}`, v.note ? h('span.muted', { dir: 'auto' }, ` · ${v.note}`) : null),
    badge(t(`prompts.${v.status}`), v.status === 'published' ? 'ok' : v.status === 'draft' ? 'warn' : 'plain'))));
    items.push(h('li', h('button', {
      type: 'button', 'aria-current': current ? 'false' : 'true',
      onclick: () => { current = null; drawVersions(); drawEditor(); drawDiff(); drawPlayground(); },
    }, h('span', t('prompts.builtin')), badge('v0'))));
    mount(versionsList, items);
  }

  function bodyOf(v) { return v || data.builtin; }

  function drawEditor() {
    const v = current;
    const body = bodyOf(v);
    const editable = v && v.status === 'draft';
    const inputs = {};
    const fields = FIELDS.map((f) => {
      inputs[f] = h('textarea', { name: f, rows: f === 'instructions' ? '10' : '5', readonly: editable ? null : true, dir: 'auto' }, body[f] || '');
      return field(t(`prompts.${f}`), inputs[f]);
    });
    const styles = body.channel_styles || {};
    const styleInputs = {};
    const styleFields = CHANNELS.map((c) => {
      styleInputs[c] = h('textarea', { name: `style-${c}`, rows: '2', readonly: editable ? null : true }, styles[c] || '');
      return field(`${c}`, styleInputs[c]);
    });
    const note = h('input', { name: 'note', value: (v && v.note) || '', readonly: editable ? null : true, maxlength: '500' });
    const collect = () => {
      const channel_styles = {};
      for (const c of CHANNELS) if (styleInputs[c].value.trim()) channel_styles[c] = styleInputs[c].value;
      return { persona: inputs.persona.value, instructions: inputs.instructions.value, guardrails: inputs.guardrails.value, channel_styles, note: note.value || null };
    };
    const buttons = [];
    if (ctx.can('tenant_admin')) {
      if (editable) {
        buttons.push(h('button#save-draft', { type: 'button', onclick: async () => {
          try { await api.put(`/prompts/${v.id}`, collect()); notify(t('common.saved')); await load(v.id); } catch (e) { fail(e); }
        } }, t('prompts.save_draft')));
        buttons.push(h('button#publish', { type: 'button', onclick: async () => {
          try {
            await api.put(`/prompts/${v.id}`, collect());
            await api.post(`/prompts/${v.id}/publish`);
            notify(t('prompts.published_ok'));
            await load(v.id);
          } catch (e) { fail(e); }
        } }, t('prompts.publish')));
        buttons.push(h('button.ghost.danger-text', { type: 'button', onclick: async () => {
          if (!window.confirm(t('common.confirm_delete'))) return;
          try { await api.del(`/prompts/${v.id}`); await load(); } catch (e) { fail(e); }
        } }, t('common.delete')));
      } else {
        buttons.push(h('button.secondary#new-draft', { type: 'button', onclick: async () => {
          try {
            const r = await api.post('/prompts', { ...collect(), note: null, based_on: v ? v.version : undefined });
            await load(r.version.id);
          } catch (e) { fail(e); }
        } }, t('prompts.new_draft')));
        if (v && v.status !== 'published') {
          buttons.push(h('button.ghost#rollback', { type: 'button', onclick: async () => {
            try { await api.post('/prompts/rollback', { version: v.version }); notify(t('prompts.published_ok')); await load(); } catch (e) { fail(e); }
          } }, t('prompts.rollback')));
        }
      }
    }
    mount(editor,
      h('h2', `${t('prompts.editing')}: ${v ? `v${v.version}` : t('prompts.builtin')}`, ' ',
        v ? badge(t(`prompts.${v.status}`), v.status === 'published' ? 'ok' : 'warn') : null),
      v ? h('p.muted', `${v.author} · ${fmtDate(v.updated_at)}`) : null,
      editable ? null : h('p.notice', t('prompts.readonly_version')),
      h('div.field', h('span.hint', t('prompts.variables')), h('div.vars', VARIABLES.map((x) => h('code', x)))),
      fields,
      h('details', h('summary', t('prompts.styles')), styleFields),
      field(t('prompts.note'), note),
      h('div.actions', buttons));
  }

  function drawDiff() {
    const versions = data.versions || [];
    const opts = [['0', `v0 · ${t('prompts.builtin')}`], ...versions.slice().reverse().map((v) => [String(v.version), `v${v.version} · ${t(`prompts.${v.status}`)}`])];
    const to = current ? current.version : 0;
    const prev = versions.find((v) => v.version < to && v.status !== 'draft') || versions.find((v) => v.version === data.published_version && v.version !== to);
    const fromSel = select(opts, prev ? prev.version : 0, { name: 'diff-from' });
    const toSel = select(opts, to, { name: 'diff-to' });
    const out = h('div#diff-out', skeleton(2, 60));
    const run = async () => {
      try {
        const d = await api.get('/prompts/diff', { from: fromSel.value, to: toSel.value });
        if (ctx.stale()) return;
        mount(out, d.fields.map((f) => {
          if (!f.changed) return h('p.muted', `${f.field}: ${t('prompts.no_change')}`);
          const { left, right } = sideBySide(f.unified);
          return h('div', h('h3', f.field), h('div.diff',
            h('div.side', { 'aria-label': `${t('prompts.diff_from')} v${d.from}` }, left.map((l) => h(`span.ln${l.cls ? `.${l.cls}` : ''}`, { dir: 'auto' }, l.text))),
            h('div.side', { 'aria-label': `${t('prompts.diff_to')} v${d.to}` }, right.map((l) => h(`span.ln${l.cls ? `.${l.cls}` : ''}`, { dir: 'auto' }, l.text)))));
        }));
      } catch (e) { mount(out, h('p.error-box', e.message)); }
    };
    fromSel.addEventListener('change', run);
    toSel.addEventListener('change', run);
    mount(diffBox, h('h2', t('prompts.diff')),
      h('div.row', field(t('prompts.diff_from'), fromSel), field(t('prompts.diff_to'), toSel)), out);
    run();
  }

  function drawPlayground() {
    if (!ctx.can('tenant_admin')) { diffBox.after(play); play.hidden = true; return; }
    play.hidden = false;
    const message = h('textarea', { name: 'message', rows: '2', maxlength: '4000', dir: 'auto' });
    const channel = select(CHANNELS.map((c) => [c, c]), 'webchat', { name: 'channel' });
    const out = h('div.play-out#play-out');
    const form = h('form', field(t('prompts.message'), message), h('div.row', field(t('inbox.channel'), channel),
      h('div.field', h('button#run-preview', { type: 'submit' }, t('prompts.run')))), out);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!message.value.trim()) return;
      mount(out, skeleton(3, 40));
      try {
        const r = await api.post('/prompts/preview', { message: message.value, version_id: current ? current.id : undefined, channel: channel.value });
        const passages = r.passages || (r.metadata && r.metadata.citations) || [];
        mount(out,
          h('h3', t('prompts.reply'), ' ', badge(r.responder), r.prompt_version ? badge(`v${r.prompt_version}`) : null),
          h('div.msg.agent#preview-reply', h('div.text', { dir: 'auto' }, r.reply)),
          h('h3', `${t('prompts.passages')} (${passages.length})`),
          passages.length ? passages.map((p) => h('div.passage',
            h('strong', { dir: 'auto' }, p.title || p.source || ''), ' ',
            h('span.scores', badge(`${t('kb.fused')} ${fmtNumber(p.score, { maximumFractionDigits: 3 })}`, 'accent'),
              p.full_text ? badge(`${t('kb.fts')} ${fmtNumber(p.full_text.score, { maximumFractionDigits: 3 })}`) : null,
              p.vector ? badge(`${t('kb.vector')} ${fmtNumber(p.vector.score, { maximumFractionDigits: 3 })}`) : null),
            p.text ? h('div.muted', { dir: 'auto' }, p.text.slice(0, 400)) : null)) : h('p.muted', t('common.none')),
          h('h3', `${t('prompts.tools')} (${(r.tool_calls || []).length})`),
          (r.tool_calls || []).length ? h('ol', r.tool_calls.map((c) => h('li', h('pre', JSON.stringify(c, null, 2))))) : h('p.muted', t('common.none')),
          h('p.muted', `${t('prompts.tokens')}: ${r.usage ? r.usage.total_tokens : 0}`));
      } catch (err) { mount(out, h('p.error-box', err.message)); }
    });
    mount(play, h('h2', t('prompts.playground')), form);
  }

  await load();
}
