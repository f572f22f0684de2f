import t from 'tap'
import { formatBytes, formatDate, formatDuration, formatTable, mirrorNote, printableName } from '../../lib/cli/format.js'

t.test('formatBytes', async (t) => {
  t.equal(formatBytes(0), '0 B')
  t.equal(formatBytes(1), '1 B')
  t.equal(formatBytes(1023), '1023 B')
  t.equal(formatBytes(1024), '1.00 KiB')
  t.equal(formatBytes(10 * 1024), '10.0 KiB', 'one decimal from 10 up')
  t.equal(formatBytes(1.5 * 1024 * 1024), '1.50 MiB')
  t.equal(formatBytes(5 * 1024 ** 3), '5.00 GiB')
  t.equal(formatBytes(3 * 1024 ** 4), '3.00 TiB')
  t.equal(formatBytes(2048 * 1024 ** 4), '2048.0 TiB', 'TiB is the largest unit')
})

t.test('formatBytes just under a unit', async (t) => {
  t.equal(formatBytes(1024 * 1024 - 1), '1.00 MiB')
})

t.test('formatDuration: seconds, then minutes, then hours', async (t) => {
  t.equal(formatDuration(0), '0s')
  t.equal(formatDuration(41.6), '42s')
  t.equal(formatDuration(185), '3m05s')
  t.equal(formatDuration(3599), '59m59s')
  t.equal(formatDuration(7620), '2h07m')
  t.equal(formatDuration(-3), '0s', 'never negative')
})

t.test('formatDate renders an ISO time in the local format', async (t) => {
  const iso = '2024-03-05T12:34:56.000Z'
  t.equal(formatDate(iso), new Date(iso).toLocaleString())
  t.not(formatDate(iso), 'Invalid Date')
})

t.test('formatTable pads columns, right-aligns the chosen ones', async (t) => {
  const text = formatTable(
    ['NAME', 'SIZE', 'N'],
    [
      ['a', '1 B', '0'],
      ['longer-name', '1023 B', '12'],
    ],
    [1, 2],
  )
  t.equal(text, ['NAME           SIZE   N', 'a               1 B   0', 'longer-name  1023 B  12', ''].join('\n'))
  const lines = text.trimEnd().split('\n')
  t.equal(new Set(lines.map((l) => l.length)).size, 1, 'right-aligned last column: every line the same width')
})

t.test('formatTable left-aligns by default and trims trailing blanks', async (t) => {
  const text = formatTable(['A', 'B'], [['xx', 'y'], ['z', 'wwww']])
  t.equal(text, 'A   B\nxx  y\nz   wwww\n')
  t.equal(formatTable(['ONLY'], []), 'ONLY\n', 'no rows: just the header')
})

t.test('printableName', async (t) => {
  t.equal(printableName('notas.txt'), 'notas.txt')
  t.equal(printableName('a "b" c'), 'a "b" c', 'quotes alone need nothing')
  t.equal(printableName('ação ✓'), 'ação ✓', 'non-ASCII text stays as is')
  t.equal(printableName('a\nb'), '"a\\nb"')
  t.equal(printableName('tab\there'), '"tab\\there"')
  t.equal(printableName('nul\u0000'), '"nul\\u0000"')
  t.equal(printableName('del\u007f'), JSON.stringify('del\u007f'))
  t.notMatch(printableName('x\r\ny'), /[\r\n]/, 'never spans lines')
})

t.test('mirrorNote: which mirror served, and why not the primary', async (t) => {
  const by = { address: 'm:7421', node: '2b2b2b2b-2222-4222-8222-222222222222' }
  t.equal(mirrorNote(by, 'p:7420'), 'deposito: served by mirror m:7421 (node 2b2b2b2b); the primary at p:7420 did not answer\n')
  t.equal(mirrorNote({ address: 'm:7421', node: null }, ''), 'deposito: served by mirror m:7421; it names no primary\n')
})
