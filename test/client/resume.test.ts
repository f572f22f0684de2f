import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { DEFAULT_RETRIES, backoffMs, depositWithRetry, isCut, withRetries, type ResumeNote } from '../../lib/client/resume.js'
import { DepositoError } from '../../lib/protocol/errors.js'
import { cuttingProxy, randomCuts } from '../helpers/cutting-proxy.js'
import { resumableNode } from '../helpers/resumable-node.js'

const ID = '9d9d9d9d-9999-4999-8999-999999999999'
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const MiB = 1024 * 1024
// The most a cut can lose: nothing here (the proxy delivers what it forwarded), but a socket's buffers in general.
const IN_FLIGHT = 256 * 1024

/** A file of `size` bytes as the deposit sees it: re-opened from byte 0 for each try. */
function fileOf(bytes: Buffer) {
  return { path: '/virtual/file.bin', mtimeMs: 1, open: () => Readable.from([bytes.subarray(0, bytes.length >> 1), bytes.subarray(bytes.length >> 1)]) }
}

async function setup(t: Test, cuts: number[], legacy = false) {
  const node = await resumableNode(t, { legacy })
  const proxy = await cuttingProxy(t, { target: node.port, cuts })
  const client = new DepositoClient({ server: { host: '127.0.0.1', port: proxy.port }, id: ID })
  const sleeps: number[] = []
  const sleep = async (ms: number) => void sleeps.push(ms)
  return { node, proxy, client, sleeps, sleep }
}

/** uploads.json stand-in: what was saved, in order, and what stands now. */
function memoryTokens() {
  const saved = new Map<string, string>()
  const log: string[] = []
  const tokens = {
    get: async (k: object) => saved.get(JSON.stringify(k)),
    save: async (k: object, v: string) => void (saved.set(JSON.stringify(k), v), log.push(`save ${v}`)),
    remove: async (k: object) => void (saved.delete(JSON.stringify(k)), log.push('remove')),
  }
  return { tokens: tokens as never, saved, log }
}

t.test('a deposit cut several times resumes after each cut and ends with the whole file', async (t) => {
  const bytes = randomBytes(3 * MiB)
  const cuts = randomCuts(3, 64 * 1024, 900 * 1024)
  const { node, proxy, client, sleeps, sleep } = await setup(t, [...cuts])
  const { tokens, saved, log } = memoryTokens()
  const shown: number[] = []
  const notes: ResumeNote[] = []
  const done = await depositWithRetry(client, {
    name: 'big.bin',
    size: bytes.length,
    file: fileOf(bytes),
    tokens,
    policy: { retries: 5, sleep },
    onBytes: (n) => shown.push(n),
    onResume: (n) => notes.push(n),
  })
  t.equal(done.sha256, sha256(bytes), 'the reply names the whole file\'s hash')
  t.ok(node.files.get('big.bin')?.equals(bytes), 'the server holds the very bytes')
  t.equal(proxy.cut, 3, 'every cut happened')
  t.equal(notes.length, 3, 'one resume per cut')
  t.ok(notes.every((n) => n.from > 0), `each resumed from where the server stood (${notes.map((n) => n.from)})`)
  t.same(notes.map((n) => n.attempt), [2, 3, 4], 'tries counted')
  t.ok(notes.every((n) => n.of === 6), 'of --retries + 1')
  const deposits = node.headers.filter((h) => h.startsWith('op:deposit|'))
  t.equal(deposits.length, 4)
  t.match(deposits[0]!, /\|upload:[0-9a-f-]{36}/, 'the first try names a token')
  t.notMatch(deposits[0]!, /offset:/, 'and starts at 0')
  for (let i = 1; i < 4; i++) t.match(deposits[i]!, `offset:${notes[i - 1]!.from}`, `try ${i + 1} starts at the offset the server reported`)
  t.equal(node.headers.filter((h) => h.startsWith('op:offset|')).length, 3, 'asked the offset after each cut')
  const headerBytes = deposits.reduce((n, h) => n + h.length + 1, 0)
  const trailer = 90
  t.ok(proxy.forwarded - headerBytes <= bytes.length + trailer * 4 + IN_FLIGHT * 3, `bytes sent in all (${proxy.forwarded}) within the size plus in-flight data per cut`)
  t.equal(node.received, bytes.length, 'no byte received twice')
  // After each resume the bar never drops below the resumed offset.
  let floor = 0
  let resumed = 0
  let below = 0
  for (let i = 1; i < shown.length; i++) {
    if (shown[i]! < shown[i - 1]!) floor = notes[resumed++]?.from ?? Infinity
    if (shown[i]! < floor) below++
  }
  t.equal(below, 0, 'progress never went below the offset it resumed from')
  t.equal(resumed, 3, 'the bar went back three times at most, once per resume')
  t.equal(shown.at(-1), bytes.length)
  t.equal(sleeps.length, 3, 'one wait per retry')
  sleeps.forEach((ms, i) => t.ok(ms >= 250 * 2 ** i && ms <= 500 * 2 ** i, `backoff ${i + 1} (${ms} ms) within its doubling band`))
  t.equal(saved.size, 0, 'the token is removed once acknowledged')
  t.match(log, [/^save /, 'remove'], 'saved before sending, removed at the end')
})

t.test('with --no-resume no token is sent and a retry starts over from 0', async (t) => {
  const bytes = randomBytes(512 * 1024)
  const { node, proxy, client, sleep } = await setup(t, [100_000])
  const done = await depositWithRetry(client, { name: 'f', size: bytes.length, file: fileOf(bytes), policy: { retries: 2, sleep } })
  t.equal(done.sha256, sha256(bytes))
  t.equal(proxy.cut, 1)
  const deposits = node.headers.filter((h) => h.startsWith('op:deposit|'))
  t.equal(deposits.length, 2)
  t.ok(deposits.every((h) => !h.includes('upload:') && !h.includes('offset:')), 'no token, no offset')
  t.notOk(node.headers.some((h) => h.startsWith('op:offset|')), 'never asked for an offset')
})

t.test('a pipe is not resumed once bytes were consumed', async (t) => {
  const bytes = randomBytes(512 * 1024)
  const { proxy, client, sleeps, sleep } = await setup(t, [100_000])
  const lines: string[] = []
  await t.rejects(
    depositWithRetry(client, { name: 'p', source: Readable.from([bytes]), policy: { retries: 5, sleep }, notify: (l) => lines.push(l) }),
    { code: 'CONNECTION_LOST' },
  )
  t.equal(proxy.cut, 1)
  t.same(lines, ['a deposit from a pipe cannot be resumed'])
  t.equal(proxy.matched.length, 1, 'no second try')
  t.notMatch(proxy.matched[0]!, /upload:/, 'a pipe names no token')
  t.same(sleeps, [], 'no wait either')
})

t.test('retries are bounded and back off', async (t) => {
  const bytes = randomBytes(256 * 1024)
  const { proxy, client, sleeps, sleep } = await setup(t, [1000, 1000, 1000, 1000])
  const { tokens, saved } = memoryTokens()
  await t.rejects(depositWithRetry(client, { name: 'f', size: bytes.length, file: fileOf(bytes), tokens, policy: { retries: 2, sleep, random: () => 1 } }), { code: 'CONNECTION_LOST' })
  t.equal(proxy.matched.length, 3, 'the first try and two retries')
  t.same(sleeps, [500, 1000], 'doubling from 0.5 s')
  t.equal(saved.size, 1, 'a cut deposit keeps its token for a re-run')
})

t.test('against a server without partial uploads, a retry starts over with the same token', async (t) => {
  const bytes = randomBytes(512 * 1024)
  const { proxy, client, sleep } = await setup(t, [200_000], true)
  const notes: ResumeNote[] = []
  const done = await depositWithRetry(client, { name: 'f', size: bytes.length, file: fileOf(bytes), tokens: memoryTokens().tokens, policy: { retries: 2, sleep }, onResume: (n) => notes.push(n) })
  t.equal(done.sha256, sha256(bytes))
  t.equal(notes[0]?.from, 0, 'NOT_FOUND from op:offset: from 0')
  t.ok((notes[0]?.lostAt ?? 0) > 0, 'it says where it was lost')
  const tokensSent = proxy.matched.map((h) => /upload:([^|]+)/.exec(h)?.[1])
  t.equal(tokensSent.length, 2)
  t.equal(tokensSent[0], tokensSent[1], 'the same token both times')
})

t.test('BUSY naming our upload is retried; other refusals are the answer', async (t) => {
  const bytes = randomBytes(64 * 1024)
  const { node, client, sleep } = await setup(t, [])
  let busy = 1
  node.refuse = (h) => {
    const token = /upload:([^|]+)/.exec(h)?.[1]
    if (!h.startsWith('op:deposit|') || busy-- <= 0) return undefined
    return `status:error|code:BUSY|message:upload ${token} is being written by another connection\n`
  }
  const done = await depositWithRetry(client, { name: 'f', size: bytes.length, file: fileOf(bytes), tokens: memoryTokens().tokens, policy: { retries: 1, sleep } })
  t.equal(done.sha256, sha256(bytes))
  node.refuse = (h) => (h.startsWith('op:deposit|') ? 'status:error|code:BUSY|message:the server is at its connection limit\n' : undefined)
  await t.rejects(depositWithRetry(client, { name: 'g', size: bytes.length, file: fileOf(bytes), tokens: memoryTokens().tokens, policy: { retries: 3, sleep } }), { code: 'BUSY' })
  t.equal(node.headers.filter((h) => h.startsWith('op:deposit|') && h.includes('nome_arquivo:g')).length, 1, 'a BUSY not about our upload is not retried')
})

t.test('a hash mismatch removes the token: the next run starts over', async (t) => {
  const bytes = randomBytes(64 * 1024)
  const { node, client, sleep } = await setup(t, [])
  const { tokens, saved } = memoryTokens()
  node.refuse = (h) => (h.startsWith('op:deposit|') ? "status:error|code:HASH_MISMATCH|message:the bytes do not hash to the trailer's\n" : undefined)
  await t.rejects(depositWithRetry(client, { name: 'f', size: bytes.length, file: fileOf(bytes), tokens, policy: { retries: 3, sleep } }), { code: 'HASH_MISMATCH' })
  t.equal(saved.size, 0, 'no token left for the next run')
  t.equal(node.headers.filter((h) => h.startsWith('op:deposit|')).length, 1, 'not retried')
})

t.test('backoff, cut detection and the retry loop', async (t) => {
  t.equal(DEFAULT_RETRIES, 5)
  t.equal(backoffMs(1, () => 0), 250)
  t.equal(backoffMs(1, () => 1), 500)
  t.equal(backoffMs(10, () => 1), 10_000, 'capped at 10 s')
  t.ok(isCut(new DepositoError('TIMEOUT', 'x')))
  t.ok(isCut(new DepositoError('UNREACHABLE', 'x')))
  t.notOk(isCut(new DepositoError('BUSY', 'upload abc is being written')), 'BUSY without a token is not ours')
  t.ok(isCut(new DepositoError('BUSY', 'upload abc is being written'), 'abc'))
  t.notOk(isCut(new DepositoError('NOT_FOUND', 'x')))
  let n = 0
  t.equal(await withRetries({ retries: 3, sleep: async () => {} }, async () => (++n < 3 ? Promise.reject(new DepositoError('TIMEOUT', 't')) : 'ok')), 'ok')
  t.equal(n, 3)
  // Real time, once, for the default sleep: a zero-length band.
  t.equal(await withRetries({ retries: 1, random: () => 0 }, async (k) => (k === 1 ? Promise.reject(new DepositoError('TIMEOUT', 't')) : k)), 2)
})

t.test('a partial the server holds for another name or size is not resumed: sent from 0', async (t) => {
  const bytes = randomBytes(200 * 1024)
  const { node, client, sleep } = await setup(t, [])
  const { tokens } = memoryTokens()
  const file = fileOf(bytes)
  // A token saved by an earlier run, whose partial on the server records another name.
  const key = { cluster: '1a1a1a1a-1111-4111-8111-111111111111', clientId: ID, name: 'f', path: file.path, size: bytes.length, mtimeMs: file.mtimeMs }
  const token = '5e5e5e5e-5555-4555-8555-555555555555'
  await (tokens as { save: (k: object, v: string) => Promise<void> }).save(key, token)
  node.partials.set(token, bytes.subarray(0, 1000))
  node.records.set(token, { size: bytes.length, name: 'other' })
  const done = await depositWithRetry(client, { name: 'f', size: bytes.length, file, tokens, policy: { retries: 0, sleep } })
  t.equal(done.sha256, sha256(bytes))
  const deposit = node.headers.find((h) => h.startsWith('op:deposit|'))!
  t.match(deposit, `upload:${token}`, 'the saved token was used')
  t.notMatch(deposit, /offset:/, 'but from 0')
})
