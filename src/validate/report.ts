// The validate report in three shapes: a terminal table, JUnit XML (one test case per gate) for CI
// systems, and one self-contained HTML page with plots (inline SVG, no scripts, no network).

import type { ValidateReport } from './index.js';

const pct = (x: number | undefined) => (x === undefined ? '-' : `${x.toFixed(2)} %`);
const ms = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '-' : `${x.toFixed(2)} ms`);

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => `  ${r.map((c, i) => c.padEnd(widths[i])).join('  ')}`.trimEnd());
}

export function renderText(r: ValidateReport): string {
  const lines: string[] = [];
  const where = (x: ValidateReport['model']) => `${x.provider} on ${x.device}${x.fallbacks.length ? ` (not ${x.fallbacks.map((f) => `${f.provider}: ${f.reason}`).join('; ')})` : ''}`;
  lines.push(`model      ${r.model.path}: ${where(r.model)}, loaded in ${ms(r.model.loadMs)}`);
  if (r.reference) lines.push(`reference  ${r.reference.path}: ${where(r.reference)}, loaded in ${ms(r.reference.loadMs)}`);
  if (r.browser) {
    const b = r.browser;
    const gpu = 'features' in b.webgpu ? `WebGPU ${b.webgpu.vendor} ${b.webgpu.architecture}${b.webgpu.features.includes('shader-f16') ? ' (shader-f16)' : ' (no shader-f16)'}` : `no WebGPU (${b.webgpu.error})`;
    lines.push(`browser    Chromium ${b.version}: ${gpu}, ${b.webgl ? 'WebGL 2' : 'no WebGL 2'}, ${b.crossOriginIsolated ? 'cross-origin isolated' : 'not isolated'}, ${b.hardwareConcurrency} cores; console ${b.consoleErrors} errors, ${b.consoleWarnings} warnings`);
    for (const l of b.console.slice(0, 3)) lines.push(`             ${l.slice(0, 160)}`);
  }
  if (r.data) lines.push(`data       ${r.data.source}: ${r.data.images} images${r.data.labelled ? ', labelled' : ''}`);
  if (r.accuracy || r.agreement) {
    lines.push('');
    const rows = [['', 'model', 'reference']];
    if (r.accuracy) {
      rows.push(['top-1', pct(r.accuracy.model.top1), pct(r.accuracy.reference?.top1)]);
      rows.push(['top-5', pct(r.accuracy.model.top5), pct(r.accuracy.reference?.top5)]);
    }
    if (r.agreement) {
      rows.push(['top-1 agreement', pct(r.agreement.top1Agreement), '']);
      rows.push(['mean cosine', r.agreement.meanCosine.toFixed(6), '']);
      rows.push(['max |logit error|', r.agreement.maxAbsError.toExponential(2), '']);
      rows.push(['SQNR', `${r.agreement.sqnrDb.toFixed(1)} dB`, '']);
    }
    lines.push(...table(rows));
  }
  if (r.speed) {
    lines.push('');
    const rows = [['batch', 'median', 'p90', 'images/s', ...(r.speed.reference ? ['reference median', 'speed-up'] : [])]];
    r.speed.model.forEach((m, i) => {
      const ref = r.speed!.reference?.[i];
      rows.push([String(m.batch), ms(m.medianMs), ms(m.p90Ms), m.imagesPerSecond.toFixed(1), ...(ref ? [ms(ref.medianMs), `${(ref.medianMs / m.medianMs).toFixed(2)}×`] : [])]);
    });
    lines.push(`speed on ${r.model.provider}${r.model.provider === 'cpu' || r.model.provider.startsWith('tfjs') ? ' (CPU: no GPU was used)' : ''}`);
    lines.push(...table(rows));
  }
  if (r.gates.length) {
    lines.push('');
    for (const g of r.gates) lines.push(`  ${g.passed ? 'PASS' : 'FAIL'}  --${g.name} ${g.limit}: ${g.detail}`);
  }
  lines.push('', `peak RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
  return lines.join('\n');
}

const xml = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

export function renderJunit(r: ValidateReport): string {
  const failures = r.gates.filter((g) => !g.passed).length;
  const cases = r.gates.map((g) => {
    const body = g.passed ? '' : `\n      <failure message="${xml(`${g.name}: ${g.detail} (limit ${g.limit})`)}" type="gate"/>\n    `;
    return `    <testcase classname="convnext.validate" name="${xml(g.name)}" time="0">${body}</testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${r.gates.length}" failures="${failures}">`,
    `  <testsuite name="convnext validate ${xml(r.model.path)}" tests="${r.gates.length}" failures="${failures}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

// A horizontal bar chart as inline SVG: one row per label, one bar per series.
function bars(title: string, labels: string[], series: { name: string; color: string; values: number[] }[], unit: string): string {
  const rowH = 14 * series.length + 10;
  const width = 640;
  const left = 150;
  const max = Math.max(1e-12, ...series.flatMap((s) => s.values.filter(Number.isFinite)));
  const height = labels.length * rowH + 40;
  const rows = labels.map((label, i) => {
    const y = 30 + i * rowH;
    const rects = series.map((s, k) => {
      const v = s.values[i];
      const w = Number.isFinite(v) ? ((width - left - 90) * v) / max : 0;
      return `<rect x="${left}" y="${y + k * 14}" width="${w.toFixed(1)}" height="12" fill="${s.color}"/><text x="${left + w + 4}" y="${y + k * 14 + 10}" font-size="10">${Number.isFinite(v) ? v.toFixed(2) : '-'} ${unit}</text>`;
    });
    return `<text x="${left - 6}" y="${y + 10}" font-size="11" text-anchor="end">${xml(label)}</text>${rects.join('')}`;
  });
  const legend = series.map((s, k) => `<rect x="${left + k * 130}" y="8" width="10" height="10" fill="${s.color}"/><text x="${left + k * 130 + 14}" y="17" font-size="11">${xml(s.name)}</text>`);
  return `<figure><figcaption>${xml(title)}</figcaption><svg width="${width}" height="${height}" role="img">${legend.join('')}${rows.join('')}</svg></figure>`;
}

function columns(title: string, edges: number[], counts: number[]): string {
  const width = 640;
  const height = 200;
  const max = Math.max(1, ...counts);
  const w = (width - 60) / counts.length;
  const cols = counts.map((c, i) => {
    const h = ((height - 50) * Math.log1p(c)) / Math.log1p(max);
    return `<rect x="${40 + i * w}" y="${height - 30 - h}" width="${Math.max(1, w - 1)}" height="${h}" fill="#4c78a8"><title>${edges[i].toExponential(2)}–${edges[i + 1].toExponential(2)}: ${c}</title></rect>`;
  });
  const axis = `<text x="40" y="${height - 12}" font-size="10">0</text><text x="${width - 20}" y="${height - 12}" font-size="10" text-anchor="end">${edges[edges.length - 1].toExponential(2)}</text>`;
  return `<figure><figcaption>${xml(title)}</figcaption><svg width="${width}" height="${height}" role="img">${cols.join('')}${axis}</svg></figure>`;
}

export function renderHtml(r: ValidateReport): string {
  const sections: string[] = [];
  const verdict = r.gates.length ? (r.passed ? '<p class="pass">All gates passed</p>' : `<p class="fail">Failed: ${r.gates.filter((g) => !g.passed).map((g) => xml(g.name)).join(', ')}</p>`) : '';
  sections.push(`<pre>${xml(renderText(r))}</pre>`);
  if (r.speed) {
    const labels = r.speed.model.map((m) => `batch ${m.batch}`);
    const series = [{ name: `model (${r.model.provider})`, color: '#4c78a8', values: r.speed.model.map((m) => m.medianMs) }];
    if (r.speed.reference) series.push({ name: `reference (${r.reference?.provider})`, color: '#f58518', values: r.speed.reference.map((m) => m.medianMs) });
    sections.push(bars('Median latency per batch size (lower is better)', labels, series, 'ms'));
  }
  if (r.accuracy) {
    const names = r.data?.classNames ?? r.accuracy.model.perClass.map((_, i) => `class ${i}`);
    const acc = (a: typeof r.accuracy.model) => a.perClass.map((c) => (c.total ? (100 * c.correct) / c.total : NaN));
    const series = [{ name: 'model', color: '#4c78a8', values: acc(r.accuracy.model) }];
    if (r.accuracy.reference) series.push({ name: 'reference', color: '#f58518', values: acc(r.accuracy.reference) });
    sections.push(bars('Top-1 accuracy per class', names.slice(0, r.accuracy.model.perClass.length), series, '%'));
  }
  if (r.errorHistogram) sections.push(columns('|model − reference| logit errors (log-scaled counts)', r.errorHistogram.edges, r.errorHistogram.counts));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>convnext validate: ${xml(r.model.path)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem;color:#222}pre{background:#f6f6f6;padding:1rem;white-space:pre-wrap}
figure{margin:1.5rem 0}figcaption{font-weight:600;margin-bottom:.3rem}.pass{color:#1a7f37;font-weight:700}.fail{color:#cf222e;font-weight:700}</style>
</head><body><h1>convnext validate</h1>${verdict}${sections.join('\n')}
<p><small>${xml(Object.entries(r.environment).map(([k, v]) => `${k}: ${v}`).join(' · '))}</small></p></body></html>
`;
}
