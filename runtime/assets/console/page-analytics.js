// Analytics: the totals of `GET /analytics` for a range, and charts of `GET /analytics/series`
// (messages, resolution and handoff rates, first-response times, tokens and cost) drawn as
// inline SVG by `lineChart` below — no chart library.

import { h, mount, field, select, skeleton } from './ui.js';
import { fmtNumber, fmtDate, fmtDuration } from './i18n.js';

const W = 600;
const H = 180;
const PAD = { top: 10, right: 10, bottom: 22, left: 44 };

/**
 * An SVG line chart of `series` (`[{label, values: [number|null]}]`) over `xs` (dates), with
 * a y axis from 0 to the largest value. In RTL the time axis still runs left to right, as
 * charts do in Arabic.
 */
export function lineChart(title, xs, series, fmt = (v) => fmtNumber(v)) {
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined && !Number.isNaN(v));
  const max = Math.max(1e-9, ...all);
  const n = Math.max(1, xs.length - 1);
  const x = (i) => PAD.left + ((W - PAD.left - PAD.right) * i) / n;
  const y = (v) => H - PAD.bottom - ((H - PAD.top - PAD.bottom) * v) / max;
  const svg = h('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title, dir: 'ltr', preserveAspectRatio: 'none' },
    h('title', title),
    h('line.axis', { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom }),
    h('line.axis', { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom }),
    h('text.lbl', { x: 4, y: PAD.top + 8 }, fmt(max)),
    h('text.lbl', { x: 4, y: H - PAD.bottom }, fmt(0)),
    xs.length ? h('text.lbl', { x: PAD.left, y: H - 6 }, fmtDate(xs[0], { month: 'short', day: 'numeric' })) : null,
    xs.length > 1 ? h('text.lbl', { x: W - PAD.right - 40, y: H - 6 }, fmtDate(xs[xs.length - 1], { month: 'short', day: 'numeric' })) : null,
    series.map((s, k) => {
      const pts = s.values.map((v, i) => (v === null || v === undefined ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)).filter(Boolean);
      return h('g', pts.length === 1
        ? h(`circle.s${k}`, { cx: pts[0].split(',')[0], cy: pts[0].split(',')[1], r: 3 })
        : h(`polyline.s${k}`, { points: pts.join(' ') }));
    }));
  return h('figure.chart', { 'aria-label': title },
    h('h3', title),
    svg,
    h('div.legend', series.map((s, k) => h('span', h(`span.sw.s${k}`), s.label))));
}

/** A point of the series from a report's totals (the shape `GET /analytics/series` answers). */
function pointOf(start, f) {
  const ms = (x) => (x === null || x === undefined ? null : x * 1000);
  return {
    start,
    conversations: f.conversations ?? 0,
    customer_messages: f.messages?.customer ?? 0,
    agent_messages: f.messages?.agent ?? 0,
    human_messages: f.messages?.human ?? 0,
    resolution_rate: f.resolution_rate ?? null,
    handoff_rate: f.handoff_rate ?? null,
    bot_first_response_p50_ms: ms(f.bot_response?.median_seconds),
    human_first_response_p50_ms: ms(f.human_response?.median_seconds),
    tokens: (f.tokens?.input ?? 0) + (f.tokens?.output ?? 0),
    cost: f.tokens?.cost_usd ?? 0,
  };
}

/**
 * The series from one `GET /analytics` per bucket, for servers without `/analytics/series`
 * (at most 62 buckets: two months of days, or two days of hours).
 */
async function seriesFromReports(api, from, to, bucket) {
  const step = bucket === 'hour' ? 3600e3 : 86400e3;
  const starts = [];
  for (let x = new Date(from).getTime(); x < new Date(to).getTime() && starts.length < 62; x += step) starts.push(x);
  const points = await Promise.all(starts.map(async (x) => {
    const r = await api.get('/analytics', { from: new Date(x).toISOString(), to: new Date(x + step).toISOString() });
    return pointOf(new Date(x).toISOString(), r.totals || {});
  }));
  return { bucket, points, derived: true };
}

export async function render(ctx) {
  const { el, t, api } = ctx;
  const day = (d) => d.toISOString().slice(0, 10);
  const today = new Date();
  const from = h('input', { type: 'date', name: 'from', value: day(new Date(today.getTime() - 13 * 86400e3)) });
  const to = h('input', { type: 'date', name: 'to', value: day(today) });
  const bucket = select([['day', t('an.day')], ['hour', t('an.hour')]], 'day', { name: 'bucket' });
  const form = h('form.filters', field(t('common.from'), from), field(t('common.to'), to), field(t('an.bucket'), bucket),
    h('div.field', h('button', { type: 'submit' }, t('common.apply'))));
  const kpis = h('div.kpis#kpis', Array.from({ length: 8 }, () => h('div.kpi', h('div.skel-line'))));
  const charts = h('div.charts#charts', Array.from({ length: 4 }, () => h('div.chart', skeleton(1, 180))));
  mount(el, h('div.page-head', h('h1', { tabindex: '-1' }, t('an.title'))), form, kpis, charts);

  async function load() {
    const end = new Date(`${to.value}T00:00:00Z`);
    end.setUTCDate(end.getUTCDate() + 1);
    const range = { from: `${from.value}T00:00:00Z`, to: end.toISOString() };
    const [totals, series] = await Promise.all([
      api.get('/analytics', range),
      api.get('/analytics/series', { ...range, bucket: bucket.value })
        .catch((e) => (e.status === 404 ? seriesFromReports(api, range.from, range.to, bucket.value) : { missing: e }))
        .catch((e) => ({ missing: e })),
    ]);
    if (ctx.stale()) return;
    const f = totals.totals || {};
    const pct = (v) => (v === null || v === undefined ? '—' : fmtNumber(v, { style: 'percent', maximumFractionDigits: 1 }));
    const kpi = (label, value) => h('div.kpi', h('div.muted', label), h('div.v', value));
    mount(kpis,
      kpi(t('an.conversations'), fmtNumber(f.conversations)),
      kpi(t('an.messages'), fmtNumber((f.messages?.customer || 0) + (f.messages?.agent || 0) + (f.messages?.human || 0))),
      kpi(t('an.resolution'), pct(f.resolution_rate)),
      kpi(t('an.handoff'), pct(f.handoff_rate)),
      kpi(`${t('an.first_response')} · ${t('an.bot')}`, f.bot_response?.median_seconds != null ? fmtDuration(f.bot_response.median_seconds) : '—'),
      kpi(`${t('an.first_response')} · ${t('an.human')}`, f.human_response?.median_seconds != null ? fmtDuration(f.human_response.median_seconds) : '—'),
      kpi(t('an.tokens'), fmtNumber((f.tokens?.input || 0) + (f.tokens?.output || 0))),
      kpi(t('an.cost'), fmtNumber(f.tokens?.cost_usd ?? 0, { style: 'currency', currency: 'USD', maximumFractionDigits: 4 })));
    if (series.missing || !series.points) {
      mount(charts, h('p.notice', t('an.series_missing')));
      return;
    }
    const pts = series.points;
    const xs = pts.map((p) => p.start);
    const col = (k) => pts.map((p) => p[k]);
    mount(charts,
      lineChart(t('an.messages'), xs, [
        { label: t('an.customer'), values: col('customer_messages') },
        { label: t('an.agent'), values: col('agent_messages') },
        { label: t('an.human'), values: col('human_messages') },
      ]),
      lineChart(`${t('an.resolution')} / ${t('an.handoff')}`, xs, [
        { label: t('an.resolution'), values: col('resolution_rate') },
        { label: t('an.handoff'), values: col('handoff_rate') },
      ], (v) => fmtNumber(v, { style: 'percent', maximumFractionDigits: 0 })),
      lineChart(t('an.first_response'), xs, [
        { label: t('an.bot'), values: col('bot_first_response_p50_ms').map((v) => (v == null ? null : v / 1000)) },
        { label: t('an.human'), values: col('human_first_response_p50_ms').map((v) => (v == null ? null : v / 1000)) },
      ], (v) => fmtDuration(v)),
      lineChart(t('an.tokens'), xs, [{ label: t('an.tokens'), values: col('tokens') }]),
      lineChart(t('an.cost'), xs, [{ label: t('an.cost'), values: col('cost') }], (v) => fmtNumber(v, { maximumFractionDigits: 4 })),
      lineChart(t('an.conversations'), xs, [{ label: t('an.conversations'), values: col('conversations') }]));
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); load().catch((err) => mount(kpis, h('p.error-box', err.message))); });
  await load();
}
