// A small SVG chart kit for the self-contained HTML report: line / step / scatter charts with nice
// ticks, a legend, and a bar chart. Output is an SVG string; no scripts, no external assets.

export interface Series {
  name: string;
  points: Array<[number, number]>;
  /** 'line' (default), 'scatter' (dots) or 'step' (a CDF's stairs). */
  style?: 'line' | 'scatter' | 'step';
  dashed?: boolean;
  /** Palette index; default the series' position. Lets one run keep one colour across charts. */
  color?: number;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  xMin?: number;
  yMin?: number;
  yMax?: number;
  xLog?: boolean;
}

export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#be185d', '#4d7c0f'];

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Tick values at 1, 2 or 5 times a power of ten covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 6): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi <= lo) hi = lo + (lo === 0 ? 1 : Math.abs(lo) * 0.1);
  const raw = (hi - lo) / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9 && ticks.length < 50; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Legend entries share a third of the width: long names are cut with an ellipsis (full name in title). */
function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function fmtTick(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${(v / 1e3).toPrecision(3)}k`;
  if (a >= 100 || v === 0) return v.toFixed(0);
  return String(Number(v.toPrecision(3)));
}

function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)) && out.length < 30; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) out.push(v);
    }
  }
  return out;
}

export function chart(series: Series[], o: ChartOptions): string {
  const W = o.width ?? 640;
  const H = o.height ?? 300;
  const m = { l: 62, r: 16, t: 30, b: 44 + 16 * Math.ceil(series.length / 3) };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.xLog || x > 0));
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(o.title)}">`,
  );
  parts.push(`<text x="${W / 2}" y="18" text-anchor="middle" class="title">${escapeXml(o.title)}</text>`);
  if (all.length === 0) {
    parts.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="empty">no data</text></svg>`);
    return parts.join('');
  }
  let [xMinData, xMaxData, yMinData, yMaxData] = [Infinity, -Infinity, 0, -Infinity];
  for (const [x, y] of all) {
    if (x < xMinData) xMinData = x;
    if (x > xMaxData) xMaxData = x;
    if (y < yMinData) yMinData = y;
    if (y > yMaxData) yMaxData = y;
  }
  let xLo = o.xMin ?? xMinData;
  let xHi = xMaxData;
  const yLo = o.yMin ?? yMinData;
  let yHi = o.yMax ?? yMaxData;
  if (xHi <= xLo) xHi = xLo + (o.xLog ? xLo : 1);
  if (yHi <= yLo) yHi = yLo + 1;
  yHi += (yHi - yLo) * 0.05;
  const xTicks = o.xLog ? logTicks(xLo, xHi) : niceTicks(xLo, xHi);
  if (!o.xLog && xTicks.length) {
    xLo = Math.min(xLo, xTicks[0]);
    xHi = Math.max(xHi, xTicks[xTicks.length - 1]);
  }
  const yTicks = niceTicks(yLo, yHi);
  const X = o.xLog
    ? (x: number) => m.l + ((Math.log10(x) - Math.log10(xLo)) / (Math.log10(xHi) - Math.log10(xLo) || 1)) * pw
    : (x: number) => m.l + ((x - xLo) / (xHi - xLo)) * pw;
  const Y = (y: number) => m.t + ph - ((y - yLo) / (yHi - yLo)) * ph;
  const r = (v: number) => v.toFixed(1);
  parts.push(`<g class="grid">`);
  for (const t of yTicks) if (t <= yHi) parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${r(Y(t))}" y2="${r(Y(t))}"/>`);
  for (const t of xTicks) parts.push(`<line y1="${m.t}" y2="${m.t + ph}" x1="${r(X(t))}" x2="${r(X(t))}"/>`);
  parts.push(`</g><g class="axis">`);
  parts.push(
    `<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}"/><line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}"/>`,
  );
  for (const t of yTicks) if (t <= yHi) parts.push(`<text x="${m.l - 6}" y="${r(Y(t) + 4)}" text-anchor="end">${fmtTick(t)}</text>`);
  for (const t of xTicks) parts.push(`<text x="${r(X(t))}" y="${m.t + ph + 16}" text-anchor="middle">${fmtTick(t)}</text>`);
  parts.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 34}" text-anchor="middle" class="label">${escapeXml(o.xLabel)}</text>`);
  parts.push(
    `<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" class="label">${escapeXml(o.yLabel)}</text>`,
  );
  parts.push(`</g>`);
  series.forEach((s, i) => {
    const color = PALETTE[(s.color ?? i) % PALETTE.length];
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.xLog || x > 0));
    if (pts.length === 0) return;
    if (s.style === 'scatter') {
      parts.push(`<g fill="${color}" fill-opacity="0.55" class="series">`);
      for (const [x, y] of pts) parts.push(`<circle cx="${r(X(x))}" cy="${r(Y(y))}" r="2"/>`);
      parts.push(`</g>`);
      return;
    }
    let d = `M${r(X(pts[0][0]))},${r(Y(pts[0][1]))}`;
    for (let k = 1; k < pts.length; k++) {
      if (s.style === 'step') d += `H${r(X(pts[k][0]))}`;
      d += `${s.style === 'step' ? 'V' : 'L'}${s.style === 'step' ? r(Y(pts[k][1])) : `${r(X(pts[k][0]))},${r(Y(pts[k][1]))}`}`;
    }
    parts.push(
      `<path class="series" d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/>`,
    );
    if (pts.length <= 24 && s.style !== 'step')
      for (const [x, y] of pts) parts.push(`<circle cx="${r(X(x))}" cy="${r(Y(y))}" r="3" fill="${color}"/>`);
  });
  series.forEach((s, i) => {
    const col = i % 3;
    const row = Math.floor(i / 3);
    const lx = m.l + col * (pw / 3);
    const ly = H - 12 - 16 * (Math.ceil(series.length / 3) - 1 - row);
    parts.push(
      `<g class="legend"><title>${escapeXml(s.name)}</title><rect x="${r(lx)}" y="${ly - 9}" width="12" height="10" fill="${PALETTE[(s.color ?? i) % PALETTE.length]}"${s.dashed ? ' fill-opacity="0.5"' : ''}/><text x="${r(lx + 16)}" y="${ly}">${escapeXml(clip(s.name, 34))}</text></g>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

/** Grouped bars: one group per metric, one bar per run; each group scaled to its own maximum. */
export function groupedBars(
  groups: Array<{ label: string; values: number[] }>,
  names: string[],
  o: { title: string; width?: number; height?: number },
): string {
  const W = o.width ?? 640;
  const H = o.height ?? 300;
  const m = { l: 16, r: 16, t: 30, b: 40 + 16 * Math.ceil(names.length / 3) };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const gw = pw / Math.max(1, groups.length);
  const bw = (gw * 0.8) / Math.max(1, names.length);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(o.title)}">`,
    `<text x="${W / 2}" y="18" text-anchor="middle" class="title">${escapeXml(o.title)}</text>`,
  ];
  groups.forEach((g, gi) => {
    const max = Math.max(...g.values.filter(Number.isFinite), 1e-12);
    g.values.forEach((v, i) => {
      const h = Number.isFinite(v) ? (v / max) * (ph - 14) : 0;
      const x = m.l + gi * gw + gw * 0.1 + i * bw;
      parts.push(
        `<rect class="bar" x="${x.toFixed(1)}" y="${(m.t + ph - h).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${PALETTE[i % PALETTE.length]}"><title>${escapeXml(`${names[i]}: ${g.label} = ${fmtTick(v)}`)}</title></rect>`,
      );
      parts.push(
        `<text x="${(x + bw / 2 - 1).toFixed(1)}" y="${(m.t + ph - h - 3).toFixed(1)}" text-anchor="middle" class="small">${Number.isFinite(v) ? fmtTick(v) : '-'}</text>`,
      );
    });
    parts.push(`<text x="${(m.l + gi * gw + gw / 2).toFixed(1)}" y="${m.t + ph + 16}" text-anchor="middle">${escapeXml(g.label)}</text>`);
  });
  names.forEach((n, i) => {
    const lx = m.l + (i % 3) * (pw / 3);
    const ly = H - 12 - 16 * (Math.ceil(names.length / 3) - 1 - Math.floor(i / 3));
    parts.push(
      `<g class="legend"><title>${escapeXml(n)}</title><rect x="${lx.toFixed(1)}" y="${ly - 9}" width="12" height="10" fill="${PALETTE[i % PALETTE.length]}"/><text x="${(lx + 16).toFixed(1)}" y="${ly}">${escapeXml(clip(n, 34))}</text></g>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}
