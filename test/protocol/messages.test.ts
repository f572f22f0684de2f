import t from 'tap'
import fc from 'fast-check'
import { DepositoError } from '../../lib/protocol/errors.js'
import { decodeFields } from '../../lib/protocol/fields.js'
import { encodeRequest, isPeerRequest, parseRequest, type Request } from '../../lib/protocol/messages.js'
import { decodeFileInfo, encodeError, encodeFileInfo, encodeOk, parseReply } from '../../lib/protocol/replies.js'

const ID = '3f2b8c1e-9d4a-4b6f-8e2a-1c3d5e7f9a0b'
const HASH = 'ab'.repeat(32)

function req(line: string): Request {
  return parseRequest(decodeFields(line))
}
function deposit(extra: string): Request {
  return req(`op:deposit|id_cliente:${ID}|nome_arquivo:a.txt|${extra}`)
}

t.test('parses each op', async (t) => {
  t.same(req('op:hello'), { op: 'hello' })
  t.same(req(`op:hello|id_cliente:${ID}`), { op: 'hello', clientId: ID })
  t.same(req(`op:list|id_cliente:${ID}|v:1|future_field:x`), { op: 'list', clientId: ID }, 'unknown fields ignored')
  t.same(req(`op:retrieve|id_cliente:${ID}|nome_arquivo:a b.txt`), { op: 'retrieve', clientId: ID, name: 'a b.txt' })
  t.same(req(`op:delete|id_cliente:${ID}|nome_arquivo:x`), { op: 'delete', clientId: ID, name: 'x' })
  const d = deposit(`tamanho_arquivo:10|hash_arquivo:${HASH}|qtd_replicas:2`)
  t.same(d, { op: 'deposit', clientId: ID, name: 'a.txt', replicas: 2, size: 10, hash: HASH })
})

t.test('missing fields are BAD_HEADER', async (t) => {
  const cases = [
    'v:1',
    'op:list',
    'op:retrieve',
    `op:retrieve|id_cliente:${ID}`,
    `op:delete|id_cliente:${ID}`,
    `op:deposit|id_cliente:${ID}|nome_arquivo:a|hash_arquivo:*`,
    `op:deposit|id_cliente:${ID}|nome_arquivo:a|tamanho_arquivo:*`,
    `op:deposit|id_cliente:${ID}|tamanho_arquivo:*|hash_arquivo:*`,
  ]
  for (const line of cases) t.throws(() => req(line), { code: 'BAD_HEADER', message: /missing field/ }, line)
})

t.test('id_cliente must be a UUID v4; case is normalised', async (t) => {
  t.same(req(`op:list|id_cliente:${ID.toUpperCase()}`), { op: 'list', clientId: ID })
  const bad = [
    'not-a-uuid',
    '',
    ID.slice(1),
    `${ID}0`,
    ID.replace(/-/g, ''),
    '6ba7b810-9dad-11d1-80b4-00c04fd430c8', // v1
    '3f2b8c1e-9d4a-5b6f-8e2a-1c3d5e7f9a0b', // v5
    '3f2b8c1e-9d4a-4b6f-ce2a-1c3d5e7f9a0b', // wrong variant
    '3f2b8c1e-9d4a-4b6f-8e2a-1c3d5e7f9a0g',
  ]
  for (const id of bad) {
    t.throws(() => req(`op:list|id_cliente:${id}`), { code: 'BAD_HEADER', message: /UUID/ }, JSON.stringify(id))
    t.throws(() => req(`op:hello|id_cliente:${id}`), { code: 'BAD_HEADER' }, `hello ${JSON.stringify(id)}`)
  }
})

t.test('hash_arquivo must be 64 hex digits; uppercase normalised; * is null', async (t) => {
  t.match(deposit(`tamanho_arquivo:1|hash_arquivo:${HASH.toUpperCase()}`), { hash: HASH })
  t.match(deposit('tamanho_arquivo:1|hash_arquivo:*'), { hash: null })
  for (const h of ['', HASH.slice(1), HASH + 'a', 'g'.repeat(64), ' '.repeat(64), '**']) {
    t.throws(() => deposit(`tamanho_arquivo:1|hash_arquivo:${h}`), { code: 'BAD_HEADER' }, JSON.stringify(h))
  }
})

t.test('sizes and replica counts are plain decimal safe integers', async (t) => {
  t.match(deposit('tamanho_arquivo:0|hash_arquivo:*'), { size: 0 })
  t.match(deposit('tamanho_arquivo:9007199254740991|hash_arquivo:*'), { size: Number.MAX_SAFE_INTEGER })
  t.match(deposit('tamanho_arquivo:*|hash_arquivo:*'), { size: null, hash: null })
  const bad = ['007', '00', '-1', '+1', '1.5', '1e3', '0x10', ' 1', '1 ', '', '9007199254740992', '99999999999999999', '١']
  for (const n of bad) {
    t.throws(() => deposit(`tamanho_arquivo:${n}|hash_arquivo:*`), { code: 'BAD_HEADER' }, `size ${JSON.stringify(n)}`)
    t.throws(() => deposit(`tamanho_arquivo:1|hash_arquivo:*|qtd_replicas:${n}`), { code: 'BAD_HEADER' }, `replicas ${JSON.stringify(n)}`)
  }
  const noReplicas = deposit('tamanho_arquivo:1|hash_arquivo:*')
  t.equal((noReplicas as { replicas?: number }).replicas, undefined, 'qtd_replicas is optional')
  t.match(deposit('tamanho_arquivo:1|hash_arquivo:*|qtd_replicas:0'), { replicas: 0 })
})

t.test('names: non-empty, at most 1024 UTF-8 bytes', async (t) => {
  const at = (name: string) => req(`op:retrieve|id_cliente:${ID}|nome_arquivo:${encodeURIComponent(name)}`)
  t.throws(() => at(''), { code: 'BAD_NAME' }, 'empty')
  t.throws(() => deposit('tamanho_arquivo:1|hash_arquivo:*|nome_arquivo:'), { code: 'BAD_HEADER' }, 'duplicate name field')
  t.throws(() => req(`op:deposit|id_cliente:${ID}|nome_arquivo:|tamanho_arquivo:1|hash_arquivo:*`), { code: 'BAD_NAME' })
  t.match(at('a'.repeat(1024)), { name: 'a'.repeat(1024) })
  t.match(at('é'.repeat(512)), { name: 'é'.repeat(512) }, '1024 bytes of two-byte characters')
  t.throws(() => at('a'.repeat(1025)), { code: 'BAD_NAME' })
  t.throws(() => at('é'.repeat(512) + 'a'), { code: 'BAD_NAME' }, '1025 bytes')
  t.throws(() => at('😀'.repeat(257)), { code: 'BAD_NAME' }, '514 UTF-16 units but 1028 bytes')
})

t.test('unknown op is BAD_HEADER', async (t) => {
  t.throws(() => req(`op:format_disk|id_cliente:${ID}`), { code: 'BAD_HEADER', message: /unknown op/ })
  t.throws(() => req(`op:HELLO|id_cliente:${ID}`), { code: 'BAD_HEADER', message: /unknown op/ })
  t.throws(() => req(`op:|id_cliente:${ID}`), { code: 'BAD_HEADER', message: /unknown op/ })
})

t.test('encodeRequest writes the wire form', async (t) => {
  t.equal(encodeRequest({ op: 'hello' }), 'op:hello|v:1\n')
  t.equal(encodeRequest({ op: 'list', clientId: ID }), `op:list|v:1|id_cliente:${ID}\n`)
  t.equal(
    encodeRequest({ op: 'deposit', clientId: ID, name: 'a|b', size: null, hash: null }),
    `op:deposit|v:1|id_cliente:${ID}|tamanho_arquivo:*|hash_arquivo:*|nome_arquivo:a%7Cb\n`,
  )
  const zero = decodeFields(encodeRequest({ op: 'deposit', clientId: ID, name: 'e', replicas: 0, size: 0, hash: HASH }).slice(0, -1))
  t.equal(zero.tamanho_arquivo, '0', 'size 0 is not "unknown"')
  t.equal(zero.qtd_replicas, '0')
})

t.test('the repair ops round-trip: scrub, holdings, and drop with or without a version', async (t) => {
  const requests: Request[] = [
    { op: 'scrub', bytes: 1073741824 },
    { op: 'holdings' },
    { op: 'drop', clientId: ID, name: 'a|b' },
    { op: 'drop', clientId: ID, name: 'a|b', hash: HASH },
  ]
  for (const request of requests) t.same(parseRequest(decodeFields(encodeRequest(request).slice(0, -1))), request, request.op)
  t.ok(requests.every((r) => isPeerRequest(r)), 'all peer requests (signed, refused without the secret)')
  t.throws(() => req('op:scrub'), { code: 'BAD_HEADER', message: /bytes/ }, 'scrub needs a budget')
  t.throws(() => req('op:scrub|bytes:-1'), { code: 'BAD_HEADER' })
  t.throws(() => req(`op:drop|id_cliente:${ID}|nome_arquivo:x|hash_arquivo:nope`), { code: 'BAD_HEADER' }, 'a drop version must be a sha256')
})

t.test('resume fields round-trip: a deposit with an upload token and offset, a retrieve from an offset, op offset', async (t) => {
  const TOKEN = '7c9e6679-7425-40de-944b-e07fc1f90ae7'
  const requests: Request[] = [
    { op: 'deposit', clientId: ID, name: 'big.iso', replicas: 1, size: 100, hash: null, upload: TOKEN, offset: 40 },
    { op: 'deposit', clientId: ID, name: 'big.iso', replicas: undefined, size: 100, hash: null, upload: TOKEN },
    { op: 'retrieve', clientId: ID, name: 'big.iso', offset: 7 },
    { op: 'offset', clientId: ID, upload: TOKEN },
  ]
  for (const request of requests) {
    const parsed = parseRequest(decodeFields(encodeRequest(request).slice(0, -1)))
    t.same(JSON.parse(JSON.stringify(parsed)), JSON.parse(JSON.stringify(request)), request.op)
  }
  t.throws(() => deposit(`tamanho_arquivo:*|hash_arquivo:*|upload:${TOKEN}`), { code: 'BAD_HEADER', message: /cannot be resumable/ }, 'a pipe is not resumable')
  t.throws(() => deposit('tamanho_arquivo:5|hash_arquivo:*|offset:2'), { code: 'BAD_HEADER', message: /needs an upload token/ })
  t.throws(() => deposit('tamanho_arquivo:5|hash_arquivo:*|upload:nope'), { code: 'BAD_HEADER', message: /upload/ })
  t.throws(() => req(`op:offset|id_cliente:${ID}`), { code: 'BAD_HEADER', message: /upload/ })
  t.throws(() => req(`op:retrieve|id_cliente:${ID}|nome_arquivo:x|offset:-1`), { code: 'BAD_HEADER' })
})

const hostileName = fc
  .string({
    unit: fc.oneof(
      fc.constantFrom('|', ':', '%', '\n', '\r', '\0', '*', '/', '..', '😀', '%7C', 'op:hello', '\u202e'),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    ),
    minLength: 1,
    maxLength: 60,
  })
  .filter((s) => Buffer.byteLength(s) <= 1024)
const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'))

t.test('property: deposit requests round-trip through the wire, hostile names included', async (t) => {
  const depositArb = fc.record({
    op: fc.constant('deposit' as const),
    clientId: fc.uuid({ version: 4 }),
    name: hostileName,
    replicas: fc.option(fc.nat(64), { nil: undefined }),
    size: fc.option(fc.maxSafeNat(), { nil: null }),
    hash: fc.option(hex64, { nil: null }),
  })
    // A chunked body (size unknown) always carries its hash in the trailer.
    .map((r) => (r.size === null ? { ...r, hash: null } : r))
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(depositArb, (request) => {
        const line = encodeRequest(request)
        if (line.indexOf('\n') !== line.length - 1) return false
        const back = parseRequest(decodeFields(line.slice(0, -1)))
        return JSON.stringify(back) === JSON.stringify(request) && (back as { replicas?: number }).replicas === request.replicas
      }),
      { numRuns: 500 },
    ),
  )
})

t.test('property: retrieve and delete round-trip', async (t) => {
  const arb = fc.record({ op: fc.constantFrom('retrieve' as const, 'delete' as const), clientId: fc.uuid({ version: 4 }), name: hostileName })
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(arb, (request) => JSON.stringify(parseRequest(decodeFields(encodeRequest(request).slice(0, -1)))) === JSON.stringify(request)),
      { numRuns: 200 },
    ),
  )
})

t.test('FileInfo encodes and decodes', async (t) => {
  const info = { name: 'x:y|z', size: 12, sha256: HASH, replicas: 2, storedAt: '2024-05-01T10:20:30.000Z' }
  const line = encodeOk(encodeFileInfo(info))
  t.same(decodeFileInfo(parseReply(line.slice(0, -1))), info)
  t.throws(() => decodeFileInfo({ ...decodeFields(line.slice(0, -1)), data: 'yesterday' }), { code: 'PROTOCOL_ERROR' })
  t.throws(() => decodeFileInfo({ nome_arquivo: 'a' }), { code: 'PROTOCOL_ERROR', message: /missing field data/ })
})

t.test('parseReply', async (t) => {
  t.equal(encodeOk(), 'status:ok\n')
  t.same({ ...parseReply('status:ok|copias:2') }, { status: 'ok', copias: '2' })
  t.same({ ...parseReply('status:ok\r') }, { status: 'ok' })
  t.throws(() => parseReply('status:error|code:NOT_FOUND|message:nope'), { code: 'NOT_FOUND', message: 'nope' })
  t.throws(() => parseReply('status:error|code:NO_SPACE'), { code: 'NO_SPACE', message: 'NO_SPACE' }, 'message defaults to the code')
  t.throws(() => parseReply('status:error|code:EXPLODED|message:m'), { code: 'INTERNAL', message: 'm' }, 'unknown code')
  t.throws(() => parseReply('status:error|code:constructor|message:m'), { code: 'INTERNAL' }, 'inherited name is not a code')
  t.throws(() => parseReply('status:error'), { code: 'INTERNAL', message: 'INTERNAL' }, 'no code at all')
  t.throws(() => parseReply('code:NOT_FOUND|message:m'), { code: 'PROTOCOL_ERROR', message: /without a status/ })
  t.throws(() => parseReply('status:maybe'), { code: 'PROTOCOL_ERROR' })
  for (const garbage of ['', 'HTTP/1.1 200 OK', 'status', '\u0000\u0001', 'status:ok|status:ok', 'status:%zz']) {
    t.throws(() => parseReply(garbage), { code: 'PROTOCOL_ERROR', message: /unreadable reply/ }, JSON.stringify(garbage))
  }
  const thrown = t.throws(() => parseReply('status:error|code:BUSY|message:x'))
  t.ok(thrown instanceof DepositoError)
})

t.test('property: encodeError round-trips code and any message on one line', async (t) => {
  const codes = ['BAD_NAME', 'NOT_FOUND', 'BUSY', 'INTERNAL', 'TIMEOUT'] as const
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(fc.constantFrom(...codes), fc.string({ unit: 'binary', maxLength: 80 }), (code, message) => {
        const line = encodeError(new DepositoError(code, message))
        if (line.indexOf('\n') !== line.length - 1) return false
        try {
          parseReply(line.slice(0, -1))
        } catch (err) {
          const e = err as DepositoError
          return e.code === code && e.message === message
        }
        return false
      }),
      { numRuns: 300 },
    ),
  )
})
