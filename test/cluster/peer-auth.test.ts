import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createHmac } from 'node:crypto'
import t, { type Test } from 'tap'
import { loadSecret, PeerAuth } from '../../lib/cluster/peer-auth.js'
import { DepositoError } from '../../lib/protocol/errors.js'
import { decodeFields } from '../../lib/protocol/fields.js'

/** Signing and checking peer request lines with the cluster secret (lib/cluster/peer-auth.ts). */
const SECRET = Buffer.from('0123456789abcdef0123456789abcdef')
const NOW = 1_800_000_000_000

/** What the server does with a received line: strip the newline, decode, verify over the exact text. */
function verifyLine(auth: PeerAuth, signed: string, now = NOW): void {
  const line = signed.endsWith('\n') ? signed.slice(0, -1) : signed
  auth.verify(line, decodeFields(line), now)
}

/** HMAC-SHA256(secret, text) in hex, computed independently of PeerAuth. */
function hmac(text: string, secret = SECRET): string {
  return createHmac('sha256', secret).update(text).digest('hex')
}

/** Asserts that `fn` throws a DepositoError with `code` (and its exit status from the table). */
function throwsCode(t: Test, fn: () => unknown, code: 'UNAUTHORIZED' | 'USAGE', message: string): void {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  t.ok(caught instanceof DepositoError, `${message}: throws a DepositoError`)
  t.match(caught, { code, exitCode: code === 'UNAUTHORIZED' ? 25 : 2 }, `${message}: ${code}`)
}

function unauthorized(t: Test, fn: () => void, message: string): void {
  throwsCode(t, fn, 'UNAUTHORIZED', message)
}

t.test('a signed line verifies with the same secret', async (t) => {
  const auth = new PeerAuth(SECRET)
  const line = auth.sign({ op: 'join', v: 1, node: '127.0.0.1:7421' }, NOW)
  t.match(line, /^op:join\|v:1\|node:127\.0\.0\.1:7421\|ts:1800000000000\|nonce:[0-9a-f]{32}\|auth:[0-9a-f]{64}\n$/, 'fields, then ts and nonce, then the MAC, one line')
  t.doesNotThrow(() => verifyLine(auth, line), 'verifies')
  // Another instance built from an equal secret (another node) agrees.
  t.doesNotThrow(() => verifyLine(new PeerAuth(Buffer.from(SECRET)), line), 'verifies on another node with the same secret')
  const fields = decodeFields(line.slice(0, -1))
  t.equal(fields.op, 'join')
  t.equal(fields.node, '127.0.0.1:7421', 'the signed fields decode as ordinary fields')
})

t.test('escaped values and undefined fields sign and verify', async (t) => {
  const auth = new PeerAuth(SECRET)
  const line = auth.sign({ op: 'replicate', id_cliente: undefined, nome_arquivo: 'a|b\n%c' }, NOW)
  t.notMatch(line, /id_cliente/, 'an undefined field is left out')
  t.doesNotThrow(() => verifyLine(auth, line))
  t.equal(decodeFields(line.slice(0, -1)).nome_arquivo, 'a|b\n%c')
})

t.test('a tampered line is refused', async (t) => {
  const auth = new PeerAuth(SECRET)
  const line = auth.sign({ op: 'join', v: 1, node: '127.0.0.1:7421' }, NOW)
  unauthorized(t, () => verifyLine(auth, line.replace('127.0.0.1:7421', '127.0.0.1:1')), 'a changed value')
  unauthorized(t, () => verifyLine(auth, line.replace('op:join', 'op:ping')), 'a changed op')
  unauthorized(t, () => verifyLine(auth, line.replace('|v:1', '|v:1|x:y')), 'an added field before the MAC')
  unauthorized(t, () => verifyLine(auth, line.replace('\n', '|x:y\n')), 'an added field after the MAC')
  unauthorized(t, () => verifyLine(auth, line.replace(/ts:\d+/, `ts:${NOW + 1}`)), 'a changed ts')
  const mac = /auth:([0-9a-f]+)/.exec(line)![1]!
  const flipped = mac.slice(0, -1) + (mac.endsWith('0') ? '1' : '0')
  unauthorized(t, () => verifyLine(auth, line.replace(mac, flipped)), 'a MAC with its last digit changed')
  unauthorized(t, () => verifyLine(auth, line.replace(mac, mac.toUpperCase())), 'the MAC in upper case (the exact text is compared)')
  unauthorized(t, () => verifyLine(auth, line.replace(mac, mac.slice(0, 32))), 'a truncated MAC')
})

t.test('a line signed with another secret is refused', async (t) => {
  const ours = new PeerAuth(SECRET)
  const theirs = new PeerAuth(Buffer.from('fedcba9876543210fedcba9876543210'))
  unauthorized(t, () => verifyLine(ours, theirs.sign({ op: 'ping', v: 1 }, NOW)), 'another secret')
  // A secret that is a prefix of ours is another key too.
  const prefix = new PeerAuth(SECRET.subarray(0, 16))
  unauthorized(t, () => verifyLine(ours, prefix.sign({ op: 'ping', v: 1 }, NOW)), 'a prefix of our secret')
})

t.test('a stale or future ts is refused, within the skew it is accepted', async (t) => {
  const auth = new PeerAuth(SECRET)
  const at = (ts: number) => auth.sign({ op: 'ping', v: 1 }, ts)
  t.doesNotThrow(() => verifyLine(auth, at(NOW - 120_000)), 'exactly the default 120 s old')
  t.doesNotThrow(() => verifyLine(auth, at(NOW + 120_000)), 'exactly 120 s ahead')
  unauthorized(t, () => verifyLine(auth, at(NOW - 120_001)), 'older than the skew')
  unauthorized(t, () => verifyLine(auth, at(NOW + 120_001)), 'further ahead than the skew')
  unauthorized(t, () => verifyLine(auth, at(NOW - 3_600_000)), 'an hour-old replay')

  const strict = new PeerAuth(SECRET, { maxSkewMs: 1_000 })
  t.doesNotThrow(() => verifyLine(strict, strict.sign({ op: 'ping' }, NOW - 1_000)))
  unauthorized(t, () => verifyLine(strict, strict.sign({ op: 'ping' }, NOW - 1_001)), 'maxSkewMs is honoured')

  const fresh = auth.sign({ op: 'ping', v: 1 }).slice(0, -1)
  t.doesNotThrow(() => auth.verify(fresh, decodeFields(fresh)), 'sign and verify default to the clock')
  const old = at(Date.now() - 10 * 60_000).slice(0, -1)
  unauthorized(t, () => auth.verify(old, decodeFields(old)), 'and a ten-minute-old line fails against the clock')
})

t.test('a signed line whose ts is not a number is refused', async (t) => {
  const auth = new PeerAuth(SECRET)
  // sign() always writes its own ts, so forge the line by hand: a valid MAC over a line whose ts is garbage.
  for (const ts of ['soon', '', 'Infinity', 'NaN']) {
    const body = `op:ping|v:1|ts:${ts}`
    const line = `${body}|auth:${hmac(body)}`
    unauthorized(t, () => auth.verify(line, decodeFields(line), NOW), `ts:${ts}`)
  }
  const body = 'op:ping|v:1'
  const line = `${body}|auth:${hmac(body)}`
  unauthorized(t, () => auth.verify(line, decodeFields(line), NOW), 'a correctly signed line without ts')
})

t.test('the MAC is HMAC-SHA256 of everything before |auth:', async (t) => {
  const auth = new PeerAuth(SECRET)
  const line = auth.sign({ op: 'drop', v: 1, id_cliente: '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f', nome_arquivo: 'x' }, NOW).slice(0, -1)
  const at = line.lastIndexOf('|auth:')
  t.equal(line.slice(at + 6), hmac(line.slice(0, at)), 'documented construction (PROTOCOL: peers can be written in another language)')
})

t.test('a line without a signature is refused', async (t) => {
  const auth = new PeerAuth(SECRET)
  for (const line of ['op:ping', 'op:join|node:127.0.0.1:1', `op:ping|ts:${NOW}|auth:`, `op:ping|ts:${NOW}|auth:${'0'.repeat(64)}`]) {
    unauthorized(t, () => auth.verify(line, decodeFields(line), NOW), JSON.stringify(line))
  }
})

// verify() compares the given MAC with the wanted one; with no `|auth:` in the line both are '' and
// timingSafeEqual('', '') is true, so only the ts check is left, and a fresh ts passes it.
t.test('a line with a fresh ts but no signature is refused', async (t) => {
  const auth = new PeerAuth(SECRET)
  for (const line of [`op:ping|ts:${NOW}`, `op:join|node:127.0.0.1:1|ts:${NOW}`, `op:ping|v:1|ts:${NOW}|x:auth`]) {
    unauthorized(t, () => auth.verify(line, decodeFields(line), NOW), JSON.stringify(line))
  }
})

t.test('a request is accepted once: the same line again is a replay', async (t) => {
  const auth = new PeerAuth(SECRET)
  const line = auth.sign({ op: 'drop', v: 1, nome_arquivo: 'x' }, NOW)
  t.doesNotThrow(() => verifyLine(auth, line), 'first time')
  t.throws(() => verifyLine(auth, line, NOW + 1), { code: 'UNAUTHORIZED', message: /replayed/ }, 'second time, a moment later')
  const other = auth.sign({ op: 'drop', v: 1, nome_arquivo: 'x' }, NOW)
  t.not(other, line, 'each signing draws a fresh nonce')
  t.doesNotThrow(() => verifyLine(auth, other), 'so the same request sent again by its sender passes')
})

t.test('a validly signed line without a well-formed nonce is refused', async (t) => {
  const auth = new PeerAuth(SECRET)
  for (const nonce of [undefined, '', 'abc', 'A'.repeat(32), '0'.repeat(31)]) {
    const body = `op:ping|v:1|ts:${NOW}` + (nonce === undefined ? '' : `|nonce:${nonce}`)
    const line = `${body}|auth:${hmac(body)}`
    t.throws(() => auth.verify(line, decodeFields(line), NOW), { code: 'UNAUTHORIZED', message: /nonce/ }, `nonce ${JSON.stringify(nonce)}`)
  }
})

t.test('a rejected request does not use up its nonce', async (t) => {
  const auth = new PeerAuth(SECRET)
  const line = auth.sign({ op: 'ping', v: 1 }, NOW)
  unauthorized(t, () => verifyLine(auth, line, NOW + 200_000), 'too old')
  t.doesNotThrow(() => verifyLine(auth, line, NOW), 'the nonce was not recorded by the refusal')
})

t.test('trailers and replies are sealed to the request nonce: HMAC(secret, nonce + newline + line)', async (t) => {
  const auth = new PeerAuth(SECRET)
  const { nonce } = auth.signRequest({ op: 'ping' }, NOW)
  const sealed = auth.bind(nonce).seal('status:ok|no:x\n')
  t.match(sealed, /^status:ok\|no:x\|auth:[0-9a-f]{64}\n$/)
  t.equal(sealed.slice(-65, -1), hmac(`${nonce}\nstatus:ok|no:x`), 'documented construction')
  const receiver = new PeerAuth(Buffer.from(SECRET)).bind(nonce)
  t.doesNotThrow(() => receiver.check(sealed.slice(0, -1), 'reply'), 'checks on the other side')
  const otherNonce = auth.bind(auth.signRequest({ op: 'ping' }, NOW).nonce)
  t.throws(() => otherNonce.check(sealed.slice(0, -1), 'reply'), { code: 'UNAUTHORIZED', message: /^reply without a valid/ }, 'bound to one nonce')
  const altered = sealed.slice(0, -1).replace('no:x', 'no:y')
  t.throws(() => receiver.check(altered, 'trailer'), { code: 'UNAUTHORIZED', message: /^trailer / }, 'an altered line')
  t.throws(() => receiver.check('status:ok|no:x', 'reply'), { code: 'UNAUTHORIZED' }, 'an unsealed line')
})

t.test('a secret shorter than 16 bytes is a usage error', async (t) => {
  for (const secret of [Buffer.alloc(0), Buffer.from('short'), Buffer.from('fifteen-bytes!!')]) {
    throwsCode(t, () => new PeerAuth(secret), 'USAGE', `${secret.length} bytes`)
  }
  t.doesNotThrow(() => new PeerAuth(Buffer.from('sixteen-bytes!!!')), '16 bytes is enough')
})

t.test('loadSecret: a file (trailing newline trimmed), else DEPOSITO_SECRET, else none', async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'secret')
  await writeFile(file, 'the-cluster-secret-value\n')
  t.same(await loadSecret(file, {}), Buffer.from('the-cluster-secret-value'), 'file, newline dropped')
  t.same(await loadSecret(file, { DEPOSITO_SECRET: 'from-the-environment!' }), Buffer.from('the-cluster-secret-value'), 'the file wins over the environment')
  t.same(await loadSecret(undefined, { DEPOSITO_SECRET: 'from-the-environment!' }), Buffer.from('from-the-environment!'), 'environment')
  t.equal(await loadSecret(undefined, {}), undefined, 'no secret: a lone node')
  t.equal(await loadSecret(undefined, { DEPOSITO_SECRET: '' }), undefined, 'an empty variable is no secret')
  await t.rejects(loadSecret(join(dir, 'missing'), {}), { code: 'ENOENT' }, 'a missing file is an error, not "no secret"')
})
