import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { connect as connectTls } from 'node:tls'
import pino from 'pino'
import t, { type Test } from 'tap'
import { openConnection } from '../../lib/net/connection.js'
import { peerTransport } from '../../lib/net/tls.js'
import { isPskPeer, Listener, type ListenerOptions } from '../../lib/server/listener.js'
import { openNodeCertificate } from '../../lib/server/node-cert.js'
import { rawRequest, replyFields, startServer } from '../helpers/server.js'

const SECRET = Buffer.from('the cluster secret of this test, long enough')

interface Captured {
  log: pino.Logger
  lines: { level: number; msg: string; [k: string]: unknown }[]
}

function captureLog(): Captured {
  const lines: Captured['lines'] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Captured['lines'][number])
      cb()
    },
  })
  return { log: pino({ level: 'debug' }, sink), lines }
}

/** A bare Listener on 127.0.0.1:0 whose accepted sockets are handed to the test (answered `ok` and closed). */
async function listen(t: Test, options: Partial<ListenerOptions> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'deposito-listener-'))
  const certificate = await openNodeCertificate(dir, 'node-under-test')
  const accepted: Socket[] = []
  const captured = captureLog()
  const listener = new Listener(
    { certificate, plaintext: true, handshakeTimeoutMs: 5_000, idleTimeoutMs: 60_000, maxPending: 64, lingerMs: 200, log: captured.log, ...options },
    (socket) => {
      accepted.push(socket)
      socket.on('error', () => {})
      socket.resume()
      socket.end('ok\n')
    },
  )
  const server = createServer({ allowHalfOpen: true }, (s) => listener.handle(s))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  t.teardown(async () => {
    listener.close()
    await new Promise((resolve) => server.close(resolve))
    await rm(dir, { recursive: true, force: true })
  })
  return { port, accepted, listener, certificate, ...captured }
}

t.test('plaintext is served where allowed, and refused with TLS_REQUIRED where not', async (t) => {
  const open = await listen(t)
  t.equal((await rawRequest(open.port, ['op:node\n'])).line, 'ok')
  t.equal(open.accepted.length, 1)
  t.notOk(isPskPeer(open.accepted[0]!), 'a plaintext client is no peer')

  const strict = await listen(t, { plaintext: false })
  const reply = await rawRequest(strict.port, ['op:node\n'])
  t.same(replyFields(reply.line), { status: 'error', code: 'TLS_REQUIRED', message: 'this node accepts only TLS: use --tls (bin/client) or DEPOSITO_TLS=1' })
  t.equal(strict.accepted.length, 0, 'never reaches the server')
  t.ok(strict.lines.some((l) => l.msg === 'refused a plaintext connection' && l.code === 'TLS_REQUIRED'), 'logged')
})

t.test('TLS with the certificate: 1.3 only; a cluster key marks the connection a peer; a wrong key is refused', async (t) => {
  const node = await listen(t, { secret: SECRET })
  const client = connectTls({ host: '127.0.0.1', port: node.port, rejectUnauthorized: false })
  await once(client, 'secureConnect')
  t.equal(client.getProtocol(), 'TLSv1.3')
  t.equal(`sha256:${client.getPeerX509Certificate()!.fingerprint256.replace(/:/g, '').toLowerCase()}`, node.certificate.fingerprint)
  client.resume().end()
  await once(client, 'close')

  const old = connectTls({ host: '127.0.0.1', port: node.port, rejectUnauthorized: false, maxVersion: 'TLSv1.2' })
  const [err] = (await once(old, 'error')) as [NodeJS.ErrnoException]
  t.match(err.code, /^ERR_SSL_/, 'TLS 1.2 is refused at the handshake')

  const peer = await openConnection({ host: '127.0.0.1', port: node.port }, { transport: peerTransport(SECRET, true) })
  peer.resume().end()
  await once(peer, 'close')
  t.equal(node.accepted.length, 2)
  t.notOk(isPskPeer(node.accepted[0]!), 'a certificate client is no peer')
  t.ok(isPskPeer(node.accepted[1]!), 'a PSK connection is marked a peer')

  const wrong = Buffer.from('another cluster secret, long enough too')
  await t.rejects(openConnection({ host: '127.0.0.1', port: node.port }, { transport: peerTransport(wrong, true) }), { code: 'UNAUTHORIZED', message: /cluster secret/ })
  t.equal(node.accepted.length, 2, 'a wrong key never reaches the server')
  await t.rejects(openConnection({ host: '127.0.0.1', port: (await listen(t)).port }, { transport: peerTransport(SECRET, true) }), { code: 'UNAUTHORIZED' }, 'a node without a secret takes no PSK peer')
})

t.test('a connection that says nothing is dropped at the deadline; when full, the oldest waiting goes first', async (t) => {
  const node = await listen(t, { handshakeTimeoutMs: 100, maxPending: 2, plaintext: false })
  const silent = connect({ host: '127.0.0.1', port: node.port })
  silent.on('error', () => {})
  let said = ''
  silent.on('data', (d: Buffer) => (said += d.toString()))
  await once(silent, 'close')
  t.equal(said, '', 'a silent socket is closed by a TLS-only node without a word')
  // The start of a TLS record, and then nothing: a handshake that never completes.
  const stalled = connect({ host: '127.0.0.1', port: node.port })
  stalled.on('error', () => {})
  stalled.end(Buffer.from([0x16, 0x03, 0x01]))
  stalled.resume()
  await once(stalled, 'close')
  t.pass('so is one whose handshake stalls')

  const slow = await listen(t, { handshakeTimeoutMs: 60_000, maxPending: 2 })
  const waiting = [connect({ host: '127.0.0.1', port: slow.port }), connect({ host: '127.0.0.1', port: slow.port })]
  for (const w of waiting) await once(w, 'connect')
  const closed = once(waiting[0]!, 'close')
  const third = connect({ host: '127.0.0.1', port: slow.port })
  await closed
  t.equal(waiting[1]!.destroyed, false, 'the newer one stays')
  t.equal(waiting[0]!.destroyed, true, 'the oldest waiting one is dropped')
  third.end('op:node\n')
  third.setEncoding('utf8')
  let answer = ''
  for await (const s of third) answer += s
  t.equal(answer, 'ok\n', 'the newcomer is served')
  for (const w of waiting) w.destroy()

  const early = connect({ host: '127.0.0.1', port: slow.port })
  await once(early, 'connect')
  early.end()
  await once(early, 'close')
  t.equal(slow.accepted.length, 1, 'a connection closed before its first byte is not served')
})

t.test('a node on loopback speaks plaintext by default, --tls makes it TLS only, and both flags are refused', async (t) => {
  const plain = await startServer(t)
  const fields = replyFields((await rawRequest(plain.address.port, ['op:node\n'])).line)
  t.equal(fields.status, 'ok')
  t.match(fields.impressao, /^sha256:[0-9a-f]{64}$/, 'op:node names the certificate')

  const strict = await startServer(t, { tls: true })
  t.equal(replyFields((await rawRequest(strict.address.port, ['op:node\n'])).line).code, 'TLS_REQUIRED')
  await t.rejects(startServer(t, { tls: true, insecurePlaintext: true }), { code: 'USAGE', message: /--tls and --insecure-plaintext/ })
})

t.test('--insecure-plaintext serves plaintext off loopback, with a warning at start', async (t) => {
  const { log, lines } = captureLog()
  const node = await startServer(t, { host: '0.0.0.0', insecurePlaintext: true, log })
  t.equal(replyFields((await rawRequest(node.address.port, ['op:node\n'])).line).status, 'ok')
  t.ok(lines.some((l) => l.level === 40 && /insecure-plaintext/.test(l.msg)), 'warned')
  const listening = lines.find((l) => l.msg === 'listening')!
  t.match(listening, { plaintext: true, fingerprint: /^sha256:/ })

  const wild = await startServer(t, { host: '0.0.0.0' })
  t.equal(replyFields((await rawRequest(wild.address.port, ['op:node\n'])).line).code, 'TLS_REQUIRED', 'off loopback, TLS only by default')
})
