// A hand-written SVG bar chart of median and p95 latencies (log scale), one bar pair per row.
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function latencyChart(rows, title) {
  const W = 900, barH = 14, gap = 10, left = 330, top = 40;
  const H = top + rows.length * (2 * barH + gap) + 40;
  const max = Math.max(...rows.map((r) => r.p95_ms ?? r.median_ms ?? 1));
  const x = (ms) => (Math.log10(Math.max(ms, 0.1)) + 1) / (Math.log10(max) + 1) * (W - left - 80);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`];
  rows.forEach((r, i) => {
    const y = top + i * (2 * barH + gap);
    out.push(`<text x="${left - 8}" y="${y + barH + 4}" text-anchor="end">${esc(r.label)}</text>`);
    if (r.median_ms !== null) {
      out.push(`<rect x="${left}" y="${y}" width="${x(r.median_ms).toFixed(1)}" height="${barH}" fill="#3b7dd8"/>`);
      out.push(`<text x="${left + x(r.median_ms) + 4}" y="${y + barH - 3}">${r.median_ms} ms median</text>`);
    }
    if (r.p95_ms !== null) {
      out.push(`<rect x="${left}" y="${y + barH}" width="${x(r.p95_ms).toFixed(1)}" height="${barH}" fill="#a9c6ef"/>`);
      out.push(`<text x="${left + x(r.p95_ms) + 4}" y="${y + 2 * barH - 3}">${r.p95_ms} p95</text>`);
    }
    if (r.median_ms === null) out.push(`<text x="${left}" y="${y + barH + 4}" fill="#888">${esc(r.note ?? 'not measured')}</text>`);
  });
  out.push(`<text x="${left}" y="${H - 12}" fill="#555">log scale; dark: median, light: p95</text>`, '</svg>');
  return out.join('\n');
}
