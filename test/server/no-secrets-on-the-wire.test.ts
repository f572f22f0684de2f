import { randomBytes } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { IdentityFile } from '../../lib/client/identity.js'
import { KnownServers, pinningTransport } from '../../lib/client/known-servers.js'
import { startRecordingProxy, type RecordingProxy } from '../helpers/recording-proxy.js'
import { startServer, waitUntil } from '../helpers/server.js'

// What someone on the path sees: with TLS on (--tls, on loopback), a recording relay between client and primary,
// and another between primary and mirror, must capture neither the client id, nor a byte of the file, nor the
// cluster secret. A plaintext run through the same relay shows that the relay does see them when they are there.

const MARKER = Buffer.from('<<deposito recognisable file bytes>>')
const FILE = Buffer.alloc(64 * 1024, MARKER)
const SECRET = Buffer.from(randomBytes(24).toString('hex'))

async function clientVia(t: Test, proxy: RecordingProxy, tls: boolean): Promise<DepositoClient> {
  const home = await mkdtemp(join(tmpdir(), 'deposito-wire-'))
  t.teardown(() => import('node:fs/promises').then(({ rm }) => rm(home, { recursive: true, force: true })))
  const transport = pinningTransport({ known: new KnownServers(home), tls })
  return new DepositoClient({ server: { host: '127.0.0.1', port: proxy.port }, identity: new IdentityFile(home), transport })
}

async function roundTrip(client: DepositoClient): Promise<Buffer> {
  await client.deposit(Readable.from([FILE]), { name: 'wire.bin', size: FILE.length, replicas: 1 })
  const chunks: Buffer[] = []
  await client.retrieve('wire.bin', new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }))
  return Buffer.concat(chunks)
}

function leaks(recorded: Buffer, id: string): string[] {
  const found: string[] = []
  if (recorded.includes(MARKER)) found.push('file bytes')
  if (recorded.includes(Buffer.from(id))) found.push('client id')
  if (recorded.includes(SECRET)) found.push('secret')
  return found
}

async function cluster(t: Test, tls: boolean) {
  const fast = { secret: SECRET, tls, heartbeatIntervalMs: 50, replicaStallMs: 2_000, replicaAckMs: 5_000 }
  const root = t.testdir()
  const primary = await startServer(t, { ...fast, dataDir: join(root, 'primary') })
  // The primary dials the mirror where it advertises itself: the relay, which is told the mirror's port once known.
  const toMirror = await startRecordingProxy(t, { port: 1 })
  const mirror = await startServer(t, { ...fast, dataDir: join(root, 'mirror'), join: `127.0.0.1:${primary.address.port}`, advertise: toMirror.address })
  toMirror.setTarget(mirror.address.port)
  await waitUntil('the mirror to join', () => primary.mirrors().some((m) => m.up))
  const toPrimary = await startRecordingProxy(t, { port: primary.address.port })
  return { primary, mirror, toMirror, toPrimary }
}

t.test('with TLS on every link, neither relay records the id, the file or the secret', async (t) => {
  const { mirror, toMirror, toPrimary } = await cluster(t, true)
  const client = await clientVia(t, toPrimary, true)
  const back = await roundTrip(client)
  const id = await client.id()
  t.ok(back.equals(FILE), 'the file comes back whole')
  t.ok(mirror.store.stat(id, 'wire.bin'), 'the mirror holds its copy: the replica crossed the relay')
  t.ok(toMirror.recorded().length > FILE.length, 'the replica went through the primary–mirror relay')
  t.ok(toPrimary.recorded().length > 2 * FILE.length, 'deposit and retrieval went through the client relay')
  t.same(leaks(toPrimary.recorded(), id), [], 'client ↔ primary: nothing readable')
  t.same(leaks(toMirror.recorded(), id), [], 'primary ↔ mirror: nothing readable')
})

t.test('the same exchange in plaintext is readable on the wire (the relay sees what is there)', async (t) => {
  const { toMirror, toPrimary } = await cluster(t, false)
  const client = await clientVia(t, toPrimary, false)
  t.ok((await roundTrip(client)).equals(FILE))
  const id = await client.id()
  t.same(leaks(toPrimary.recorded(), id), ['file bytes', 'client id'])
  t.same(leaks(toMirror.recorded(), id), ['file bytes', 'client id'], 'the secret itself never travels, even in clear')
})
