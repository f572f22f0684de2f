/** Human-facing formatting shared by the CLIs. Machine output (--json) never goes through here. */
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

export function formatBytes(n: number): string {
  let value = n
  let unit = 0
  // Compare what will be printed, so 1048575 B reads 1.00 MiB rather than 1024.0 KiB.
  while (unit < UNITS.length - 1 && Number(value.toFixed(1)) >= 1024) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`
}

/** An ETA: `42s`, `3m05s`, `2h07m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

export function formatDate(iso: string): string {
  return new Date(iso).toLocaleString()
}

/** Left-aligned columns, except those named in `right` (numbers read better right-aligned). */
export function formatTable(header: string[], rows: string[][], right: number[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n') + '\n'
}

/** Names may hold anything, newlines included; a table row must stay one line. */
export function printableName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(name) ? JSON.stringify(name) : name
}

/** The stderr line for a read a mirror served; `missedPrimary` is '' when the mirror named no primary. */
export function mirrorNote(by: { address: string; node: string | null }, missedPrimary: string): string {
  const node = by.node === null ? '' : ` (node ${by.node.slice(0, 8)})`
  const why = missedPrimary === '' ? 'it names no primary' : `the primary at ${missedPrimary} did not answer`
  return `deposito: served by mirror ${by.address}${node}; ${why}\n`
}
