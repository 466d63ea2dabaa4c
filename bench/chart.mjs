// The flood benchmark's chart: legitimate success and p99 connect time
// against the offered rate, kernel syncookies vs the agent. Plain SVG.

const COLORS = { kernel: '#c0392b', agent: '#2471a3' }
const LABELS = { kernel: 'kernel syncookies', agent: 'syncookie-agent' }

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c])
}

/** x of an entry: the rate the flooder reached (0 for the unflooded baseline). */
function xOf(e) {
  return e.offeredPps === 0 ? 0 : e.achievedPps
}

function panel({ x0, y0, w, h, entries, title, yOf, yMax, yTicks, yFmt, xMax }) {
  const out = []
  const sx = (v) => x0 + (v / xMax) * w
  const sy = (v) => y0 + h - (Math.min(v, yMax) / yMax) * h
  out.push(`<text x="${x0 + w / 2}" y="${y0 - 12}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`)
  out.push(`<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#999"/>`)
  for (const t of yTicks) {
    out.push(`<line x1="${x0}" x2="${x0 + w}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`)
    out.push(`<text x="${x0 - 6}" y="${sy(t) + 4}" text-anchor="end">${esc(yFmt(t))}</text>`)
  }
  const step = xMax > 400_000 ? 100_000 : 50_000
  for (let t = 0; t <= xMax; t += step) {
    out.push(`<line x1="${sx(t)}" x2="${sx(t)}" y1="${y0 + h}" y2="${y0 + h + 4}" stroke="#999"/>`)
    out.push(`<text x="${sx(t)}" y="${y0 + h + 16}" text-anchor="middle">${t / 1000}k</text>`)
  }
  out.push(`<text x="${x0 + w / 2}" y="${y0 + h + 32}" text-anchor="middle">SYN flood, packets/s reached</text>`)
  for (const mode of Object.keys(COLORS)) {
    const pts = entries.filter((e) => e.mode === mode).sort((a, b) => xOf(a) - xOf(b))
    if (pts.length === 0) continue
    out.push(`<polyline fill="none" stroke="${COLORS[mode]}" stroke-width="2" points="${pts.map((e) => `${sx(xOf(e)).toFixed(1)},${sy(yOf(e)).toFixed(1)}`).join(' ')}"/>`)
    for (const e of pts) {
      out.push(`<circle cx="${sx(xOf(e)).toFixed(1)}" cy="${sy(yOf(e)).toFixed(1)}" r="3.5" fill="${COLORS[mode]}"><title>${esc(`${LABELS[mode]}, ${xOf(e)} pps: ${yFmt(yOf(e))}`)}</title></circle>`)
    }
  }
  return out.join('\n')
}

/** The SVG text for flood entries (runFlood's entries). */
export function floodChart(entries, { subtitle = '' } = {}) {
  const W = 860
  const H = 380
  const xMax = Math.max(100_000, ...entries.map(xOf)) * 1.08
  const p99Max = Math.max(10, ...entries.map((e) => e.p99ConnectMs))
  const p99Top = p99Max > 500 ? 1100 : Math.ceil(p99Max / 10) * 10 * 1.2
  const p99Ticks = p99Top > 500 ? [0, 250, 500, 750, 1000] : [0, p99Top / 4, p99Top / 2, (3 * p99Top) / 4].map((v) => Math.round(v))
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    panel({ x0: 70, y0: 50, w: 320, h: 230, entries, title: 'legitimate connections that succeeded (1 s timeout)', yOf: (e) => e.legitSuccess, yMax: 100, yTicks: [0, 25, 50, 75, 90, 100], yFmt: (v) => `${v}%`, xMax }),
    panel({ x0: 500, y0: 50, w: 320, h: 230, entries, title: 'p99 connect time (failures count as 1 s)', yOf: (e) => e.p99ConnectMs, yMax: p99Top, yTicks: p99Ticks, yFmt: (v) => `${Number(v.toFixed(1))} ms`, xMax }),
  ]
  let lx = 70
  for (const mode of Object.keys(COLORS)) {
    parts.push(`<line x1="${lx}" x2="${lx + 24}" y1="${H - 30}" y2="${H - 30}" stroke="${COLORS[mode]}" stroke-width="3"/>`)
    parts.push(`<text x="${lx + 30}" y="${H - 26}">${esc(LABELS[mode])}</text>`)
    lx += 200
  }
  if (subtitle) parts.push(`<text x="${W - 10}" y="${H - 8}" text-anchor="end" fill="#666" font-size="10">${esc(subtitle)}</text>`)
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}
