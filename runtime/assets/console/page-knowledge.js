// The knowledge base: upload several files (drag and drop or a file picker; each file is sent
// as the raw body with its name, with upload progress), the documents with their indexing
// status (refreshed while any is queued or indexing), edit title and tags, re-index, delete,
// and a search console that shows each retriever's rank and score next to the fused score.

import { h, mount, field, select, skeleton, notify, fail, badge, table } from './ui.js';
import { fmtDate, fmtNumber } from './i18n.js';

const STATUS_KIND = { queued: 'plain', indexing: 'accent', indexed: 'ok', failed: 'danger' };
const score = (n) => fmtNumber(n, { maximumFractionDigits: 3 });

export async function render(ctx) {
  const { el, t, api } = ctx;
  const admin = ctx.can('tenant_admin');
  const fileInput = h('input#kb-files', { type: 'file', multiple: true, class: 'sr-only' });
  const uploads = h('ul.uploads#uploads', { 'aria-label': t('kb.upload') });
  const drop = h('div.dropzone#dropzone',
    h('p', t('kb.drop')),
    h('label.btn', { for: 'kb-files' }, t('kb.choose')),
    fileInput);
  const docs = h('div#documents', skeleton(4, 44));
  const searchBox = h('section.panel#kb-search');
  let pollTimer = null;

  // The documents list, whose length is only known once loaded, comes last: nothing below it
  // moves when it arrives.
  mount(el, h('div.page-head', h('h1', { tabindex: '-1' }, t('kb.title'))),
    admin ? h('section.panel', h('h2', t('kb.upload')), drop, uploads) : null,
    searchBox,
    h('section', h('h2', t('kb.documents')), docs));

  // The label opens the picker with Enter/Space too: it is focusable and forwards the key.
  const chooser = drop.querySelector('label');
  if (chooser) {
    chooser.tabIndex = 0;
    chooser.setAttribute('role', 'button');
    chooser.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); fileInput.click(); } });
  }
  fileInput.addEventListener('change', () => { send([...fileInput.files]); fileInput.value = ''; });
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add('over'); });
  }
  for (const type of ['dragleave', 'drop']) drop.addEventListener(type, () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); send([...(e.dataTransfer?.files || [])]); });

  async function send(files) {
    await Promise.all(files.map(async (file) => {
      const bar = h('progress', { max: '1', value: '0', 'aria-label': file.name });
      const state = h('span.muted', '0%');
      uploads.append(h('li', { dataset: { file: file.name } }, h('bdi', { dir: 'auto' }, file.name), bar, state));
      try {
        await api.uploadDocument(file, (p) => { bar.value = p; state.textContent = `${Math.round(p * 100)}%`; });
        state.textContent = t('kb.status.queued');
      } catch (e) {
        state.textContent = e.message;
        state.className = 'error';
        fail(e);
      }
    }));
    await loadDocs();
  }

  async function loadDocs() {
    const r = await api.get('/knowledge/documents', { limit: 200 });
    if (ctx.stale()) return;
    const list = r.documents || [];
    mount(docs, table(t('kb.documents'),
      [t('common.title'), t('common.status'), t('kb.chunks'), t('common.tags'), t('common.created'), admin ? t('common.actions') : ''],
      list.map((d) => [
        h('div', { dataset: { doc: d.id } }, h('strong', { dir: 'auto' }, d.title), h('div.muted', { dir: 'auto' }, d.source || '')),
        h('div', badge(t(`kb.status.${d.status}`), STATUS_KIND[d.status]), d.error ? h('div.error', { dir: 'auto' }, d.error) : null),
        String(d.chunk_count ?? 0),
        (d.tags || []).join(', '),
        fmtDate(d.created_at),
        admin ? h('div.actions',
          h('button.small.secondary', { type: 'button', onclick: () => edit(d) }, t('common.edit')),
          h('button.small.secondary', { type: 'button', onclick: async () => { try { await api.post(`/knowledge/documents/${d.id}/reindex`); await loadDocs(); } catch (e) { fail(e); } } }, t('kb.reindex')),
          h('button.small.danger', { type: 'button', onclick: async () => {
            if (!window.confirm(t('common.confirm_delete'))) return;
            try { await api.del(`/knowledge/documents/${d.id}`); await loadDocs(); } catch (e) { fail(e); }
          } }, t('common.delete'))) : '',
      ])));
    clearTimeout(pollTimer);
    if (list.some((d) => d.status === 'queued' || d.status === 'indexing')) {
      pollTimer = setTimeout(() => loadDocs().catch(() => {}), 1500);
    }
  }

  function edit(d) {
    const title = h('input', { name: 'title', value: d.title, maxlength: '300' });
    const tags = h('input', { name: 'tags', value: (d.tags || []).join(', ') });
    const form = h('form.panel', h('h3', t('common.edit')), field(t('common.title'), title), field(t('common.tags'), tags),
      h('div.actions', h('button', { type: 'submit' }, t('common.save')), h('button.ghost', { type: 'button', onclick: () => form.remove() }, t('common.cancel'))));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        await api.patch(`/knowledge/documents/${d.id}`, { title: title.value.trim(), tags: tags.value.split(',').map((x) => x.trim()).filter(Boolean) });
        notify(t('common.saved'));
        form.remove();
        await loadDocs();
      } catch (err) { fail(err); }
    });
    docs.before(form);
    title.focus();
  }

  // ----- search console -----
  const query = h('input', { name: 'query', type: 'search', maxlength: '1000' });
  const mode = select([['hybrid', t('kb.hybrid')], ['full_text', t('kb.fts')], ['vector', t('kb.vector')]], 'hybrid', { name: 'mode' });
  const results = h('div#search-results');
  const form = h('form', h('div.row', field(t('kb.query'), query), field(t('kb.mode'), mode),
    h('div.field', h('button#run-search', { type: 'submit' }, t('common.search')))), results);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!query.value.trim()) return;
    mount(results, skeleton(3, 60));
    try {
      const r = await api.post('/knowledge/search', { query: query.value, k: 10, mode: mode.value });
      mount(results,
        h('p.muted', `${r.hits.length} · ${r.model || ''} · ${fmtNumber(r.took_ms, { maximumFractionDigits: 1 })} ms`),
        r.hits.length ? r.hits.map((x, i) => h('div.hit', { dataset: { document: x.document_id } },
          h('div.row', h('strong', { dir: 'auto' }, `${i + 1}. ${x.title}`), x.heading_path && x.heading_path.length ? h('span.muted', { dir: 'auto' }, x.heading_path.join(' › ')) : null),
          h('div.scores',
            badge(`${t('kb.fused')} ${score(x.score)}`, 'accent'),
            badge(x.full_text ? `${t('kb.fts')} ${score(x.full_text.score)} (${t('kb.rank')} ${x.full_text.rank})` : `${t('kb.fts')} —`),
            badge(x.vector ? `${t('kb.vector')} ${score(x.vector.score)} (${t('kb.rank')} ${x.vector.rank})` : `${t('kb.vector')} —`)),
          h('div.text', { dir: 'auto' }, x.text))) : h('p.muted', t('kb.no_hits')));
    } catch (err) { mount(results, h('p.error-box', err.message)); }
  });
  mount(searchBox, h('h2', t('kb.search')), form);

  ctx.onCleanup(() => clearTimeout(pollTimer));
  await loadDocs();
}
