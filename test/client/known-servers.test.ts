import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { IdentityFile } from '../../lib/client/identity.js'
import { KnownServers, pinningTransport } from '../../lib/client/known-servers.js'
import { openConnection } from '../../lib/net/connection.js'
import { isLoopback, wantsTls } from '../../lib/net/tls.js'
import { startRecordingProxy } from '../helpers/recording-proxy.js'
import { startServer } from '../helpers/server.js'

async function home(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'deposito-pins-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('loopback is 127/8, ::1 and localhost; anything else gets TLS by itself', async (t) => {
  for (const h of ['127.0.0.1', '127.9.8.7', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) t.ok(isLoopback(h), h)
  for (const h of ['10.0.0.1', '0.0.0.0', '::', 'alpha', '128.0.0.1', 'localhost.example.com']) t.notOk(isLoopback(h), h)
  t.notOk(wantsTls(false, { host: '127.0.0.1', port: 1 }))
  t.ok(wantsTls(true, { host: '127.0.0.1', port: 1 }))
  t.ok(wantsTls(false, { host: '10.1.2.3', port: 1 }))
})

t.test('known_servers.json: first claim stands, set replaces, mode 0600, parallel claims agree', async (t) => {
  const known = new KnownServers(join(await home(t), 'nested'))
  t.equal(await known.get('a:1'), undefined)
  t.equal(await known.claim('a:1', 'sha256:one'), 'sha256:one')
  t.equal(await known.claim('a:1', 'sha256:two'), 'sha256:one', 'a pin is not replaced by a claim')
  await known.set('a:1', 'sha256:two')
  t.equal(await known.get('a:1'), 'sha256:two')
  t.equal((await stat(known.path)).mode & 0o777, 0o600)
  const all = await Promise.all(Array.from({ length: 8 }, (_, i) => new KnownServers(join(known.path, '..')).claim('b:2', `sha256:${i}`)))
  t.equal(new Set(all).size, 1, 'every process ends up with the same pin')
})

t.test('a pinned address that presents another certificate is refused; --fingerprint pins out of band', async (t) => {
  const dir = await home(t)
  const known = new KnownServers(dir)
  const first = await startServer(t, { tls: true })
  const second = await startServer(t, { tls: true })
  // One address, as a client would dial it, in front of either node (a node whose data dir was replaced).
  const proxy = await startRecordingProxy(t, { port: first.address.port })
  const address = { host: '127.0.0.1', port: proxy.port }
  const fp = (s: typeof first) => replyImpressao(s)
  const [fp1, fp2] = [await fp(first), await fp(second)]

  const tofu = pinningTransport({ known, tls: true })
  ;(await openConnection(address, { transport: tofu })).destroy()
  t.equal(await known.get(proxy.address), fp1, 'pinned at first use, under the address as dialled')

  proxy.retarget(second.address.port)
  const err = (await openConnection(address, { transport: tofu }).then(
    (socket) => socket.destroy(),
    (e: unknown) => e,
  )) as Error & { code: string }
  t.match(err, { code: 'UNTRUSTED' })
  for (const part of [proxy.address, fp1, fp2, `--fingerprint ${fp2}`, 'bin/server fingerprint --data DIR', known.path]) t.ok(err.message.includes(part), `names ${part}`)
  t.equal(await known.get(proxy.address), fp1, 'the pin stands')

  await t.rejects(openConnection(address, { transport: pinningTransport({ known, fingerprints: [fp1] }) }), { code: 'UNTRUSTED', message: /not the --fingerprint given/ })
  ;(await openConnection(address, { transport: pinningTransport({ known, fingerprints: [fp2] }) })).destroy()
  t.equal(await known.get(proxy.address), fp2, 'the right --fingerprint replaces the pin')
  ;(await openConnection(address, { transport: tofu })).destroy()
  t.pass('and is trusted from then on')
})

t.test('the client library refuses at its first probe, and a plaintext client is told TLS is required', async (t) => {
  const dir = await home(t)
  const node = await startServer(t, { tls: true })
  const server = { host: '127.0.0.1', port: node.address.port }
  const known = new KnownServers(dir)
  await known.set(`127.0.0.1:${node.address.port}`, `sha256:${'0'.repeat(64)}`)
  const pinned = new DepositoClient({ server, identity: new IdentityFile(dir), transport: pinningTransport({ known, tls: true }) })
  await t.rejects(pinned.list(), { code: 'UNTRUSTED' }, 'not mistaken for an old server or a silent node')
  const plain = new DepositoClient({ server, identity: new IdentityFile(dir) })
  await t.rejects(plain.list(), { code: 'TLS_REQUIRED', message: /accepts only TLS/ })
  const mirrorOfNothing = new DepositoClient({ server: [server, { host: '127.0.0.1', port: 1 }], identity: new IdentityFile(dir), transport: pinningTransport({ known, tls: true }) })
  await t.rejects(mirrorOfNothing.id(), { code: 'UNTRUSTED' }, 'never passed over for the next node in --server')
  t.notOk(JSON.parse(await readFile(join(dir, 'known_servers.json'), 'utf8'))['127.0.0.1:1'])
})

async function replyImpressao(node: { address: { port: number } }): Promise<string> {
  const { askWithin } = await import('../../lib/net/connection.js')
  const known = new KnownServers(await mkdtemp(join(tmpdir(), 'deposito-probe-')))
  const fields = await askWithin({ host: '127.0.0.1', port: node.address.port }, { op: 'node' }, 5_000, { transport: pinningTransport({ known, tls: true }) })
  await rm(join(known.path, '..'), { recursive: true, force: true })
  return fields.impressao!
}
