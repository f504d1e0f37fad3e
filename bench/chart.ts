/**
 * A grouped bar chart as a standalone SVG (no dependencies): one panel per metric, one bar per
 * mode, the value printed on each bar.
 */
export interface ChartPanel {
  title: string;
  unit: string;
  bars: Array<{ label: string; value: number | null }>;
}

const PANEL_W = 260;
const PANEL_H = 220;
const TOP = 50;
const BOTTOM = 40;
const COLORS = ['#8c8c8c', '#4e79a7', '#e15759', '#59a14f', '#f28e2b'];

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function panel(p: ChartPanel, x0: number): string {
  const max = Math.max(...p.bars.map((b) => b.value ?? 0), 1e-9);
  const plotH = PANEL_H - TOP - BOTTOM;
  const slot = (PANEL_W - 40) / p.bars.length;
  const parts = [
    `<text x="${x0 + PANEL_W / 2}" y="20" text-anchor="middle" font-weight="bold">${escapeXml(p.title)}</text>`,
    `<text x="${x0 + PANEL_W / 2}" y="36" text-anchor="middle" font-size="11" fill="#555">${escapeXml(p.unit)}</text>`,
    `<line x1="${x0 + 20}" y1="${PANEL_H - BOTTOM}" x2="${x0 + PANEL_W - 20}" y2="${PANEL_H - BOTTOM}" stroke="#333"/>`,
  ];
  p.bars.forEach((bar, i) => {
    const h = bar.value === null ? 0 : (bar.value / max) * plotH;
    const x = x0 + 20 + i * slot + slot * 0.15;
    const w = slot * 0.7;
    const y = PANEL_H - BOTTOM - h;
    const label = bar.value === null ? 'n/a' : bar.value >= 100 ? bar.value.toFixed(0) : bar.value.toFixed(2);
    parts.push(
      `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[i % COLORS.length]}"/>`,
      `<text x="${(x + w / 2).toFixed(1)}" y="${(y - 4).toFixed(1)}" text-anchor="middle" font-size="11">${label}</text>`,
      `<text x="${(x + w / 2).toFixed(1)}" y="${PANEL_H - BOTTOM + 16}" text-anchor="middle" font-size="11">${escapeXml(bar.label)}</text>`,
    );
  });
  return parts.join('\n');
}

export function barChartSvg(title: string, panels: readonly ChartPanel[], footnote: string): string {
  const width = PANEL_W * panels.length;
  const height = PANEL_H + 40;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<g transform="translate(0,20)">`,
    ...panels.map((p, i) => panel(p, i * PANEL_W)),
    '</g>',
    `<text x="8" y="16" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="8" y="${height - 8}" font-size="11" fill="#555">${escapeXml(footnote)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
