import t from 'tap'
import fc from 'fast-check'
import { decodeFields, encodeFields, escapeValue, unescapeValue } from '../../lib/protocol/fields.js'

/** Characters the codec must escape or otherwise gets wrong, mixed with arbitrary code points and graphemes. */
const hostileUnit = fc.oneof(
  fc.constantFrom('|', ':', '%', '\n', '\r', '\0', '\t', '\x7f', '\x1b', '😀', '%41', '%zz', '%', 'é', '\u2028', '\ufeff'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
)
const anyValue = fc.oneof(fc.string({ unit: hostileUnit, maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 40 }))
const key = fc.stringMatching(/^[a-z][a-z0-9_]{0,12}$/)

function newlines(s: string): number {
  return s.split('\n').length - 1
}

t.test('escapeValue escapes % | and control characters, nothing else', async (t) => {
  t.equal(escapeValue('a|b c%d\n\r\0\x7f\x1f\t'), 'a%7Cb c%25d%0A%0D%00%7F%1F%09')
  t.equal(escapeValue('notas.txt'), 'notas.txt')
  t.equal(escapeValue('ação 😀 / ../x y'), 'ação 😀 / ../x y', 'non-ASCII and spaces stay raw')
  t.equal(escapeValue(''), '')
})

t.test('unescapeValue decodes any valid %XX and refuses the rest with BAD_HEADER', async (t) => {
  t.equal(unescapeValue('a%7cb%3A'), 'a|b:', 'lowercase hex accepted')
  t.equal(unescapeValue('%C3%A7%F0%9F%98%80'), 'ç😀', 'escaped UTF-8 decodes')
  t.equal(unescapeValue('plain'), 'plain')
  for (const bad of ['%', '%4', '%zz', '100%', '%C3', '%ED%A0%80', '%C0%AF', '%FF']) {
    t.throws(() => unescapeValue(bad), { code: 'BAD_HEADER' }, JSON.stringify(bad))
  }
})

t.test('encodeFields', async (t) => {
  t.equal(encodeFields({ op: 'list', v: 1, id_cliente: undefined, x_2: 'a|b' }), 'op:list|v:1|x_2:a%7Cb\n')
  t.equal(encodeFields({ a: '' }), 'a:\n', 'empty value kept')
  t.equal(encodeFields({ a: 0 }), 'a:0\n', 'zero kept')
  for (const bad of ['', 'Op', '1a', '_a', 'a-b', 'a b', 'a:b', 'ação']) {
    t.throws(() => encodeFields({ [bad]: 'x' }), TypeError, `key ${JSON.stringify(bad)} refused`)
  }
})

t.test('decodeFields accepts well-formed lines', async (t) => {
  t.same({ ...decodeFields('op:hello|v:1') }, { op: 'hello', v: '1' })
  t.same({ ...decodeFields('op:hello\r') }, { op: 'hello' }, 'a trailing \\r is forgiven')
  t.same({ ...decodeFields('a:|b:%7C') }, { a: '', b: '|' }, 'empty value allowed')
  t.same({ ...decodeFields('nome_arquivo:relatório final.pdf') }, { nome_arquivo: 'relatório final.pdf' })
  // Only the first ':' of a field separates key from value; later ones (dates, messages) are value bytes.
  t.same({ ...decodeFields('data:2024-05-01T10:20:30Z|m:a%3Ab') }, { data: '2024-05-01T10:20:30Z', m: 'a:b' })
  const colon = encodeFields({ data: '10:20', m: 'x:%:y' })
  t.same({ ...decodeFields(colon.slice(0, -1)) }, { data: '10:20', m: 'x:%:y' }, "':' round-trips")
  const f = decodeFields('constructor:1|tostring:2')
  t.equal(Object.getPrototypeOf(f), null, 'no prototype, so inherited names are not fields')
  t.equal(f.constructor, '1')
  t.equal(decodeFields('a:1').constructor, undefined)
})

t.test('decodeFields refuses malformed lines with BAD_HEADER', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['', /empty line/],
    ['\r', /empty line/],
    ['op', /without ':'/],
    ['op:list|', /without ':'/],
    ['|op:list', /without ':'/],
    [':x', /bad field name/],
    ['Op:list', /bad field name/],
    ['9a:list', /bad field name/],
    ['a b:list', /bad field name/],
    ['op:list|op:hello', /appears twice/],
    ['op:100%', /percent-escape/],
    ['op:%ED%A0%80', /percent-escape/],
  ]
  for (const [line, message] of bad) {
    t.throws(() => decodeFields(line), { code: 'BAD_HEADER', message }, JSON.stringify(line))
  }
})

t.test('property: any value round-trips and the line has one \\n, at its end', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(key, anyValue, (k, value) => {
        const line = encodeFields({ [k]: value })
        if (newlines(line) !== 1 || !line.endsWith('\n')) return false
        // No raw control character survives (so no \r, NUL, ESC in a log line either).
        // eslint-disable-next-line no-control-regex
        if (/[\u0000-\u0009\u000b-\u001f\u007f]/.test(line)) return false
        const decoded = decodeFields(line.slice(0, -1))
        return Object.keys(decoded).length === 1 && decoded[k] === value
      }),
      { numRuns: 1000 },
    ),
  )
})

t.test('property: whole records round-trip, key order kept', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(fc.dictionary(key, anyValue, { minKeys: 1, maxKeys: 8 }), (record) => {
        const line = encodeFields(record)
        if (newlines(line) !== 1 || !line.endsWith('\n')) return false
        const decoded = decodeFields(line.slice(0, -1))
        return JSON.stringify(Object.entries(decoded)) === JSON.stringify(Object.entries(record))
      }),
      { numRuns: 300 },
    ),
  )
})

t.test('property: decodeFields on arbitrary text either throws BAD_HEADER or yields well-formed text', async (t) => {
  const line = fc.string({ unit: fc.oneof(hostileUnit, fc.constantFrom('a', 'b', 'op', '%C3', '%A7')), maxLength: 30 })
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(line, (text) => {
        let fields
        try {
          fields = decodeFields(text)
        } catch (err) {
          return (err as { code?: string }).code === 'BAD_HEADER'
        }
        // Decoded values survive a trip through UTF-8 unchanged: no lone surrogates.
        return Object.values(fields).every((v) => Buffer.from(v, 'utf8').toString('utf8') === v)
      }),
      { numRuns: 1000 },
    ),
  )
})

t.test('raw control characters in a value are refused (they must arrive escaped)', async (t) => {
  for (const raw of ['a\u0000b', 'tab\there', 'esc\u001b', 'del\u007f']) {
    t.throws(() => decodeFields(`nome_arquivo:${raw}`), { code: 'BAD_HEADER' }, JSON.stringify(raw))
  }
  t.same(decodeFields('op:hello\r'), { op: 'hello' }, 'one trailing CR from a hand-typed line is forgiven')
})
