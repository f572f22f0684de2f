import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import { PeerAuth } from '../../lib/cluster/peer-auth.js'
import { PeerClient } from '../../lib/cluster/peer-client.js'
import type { DepositoServer } from '../../lib/server/server.js'
import { listen } from '../helpers/fake-server.js'
import { recordingProxy, type RecordingProxy } from '../helpers/recording-proxy.js'
import { rawRequest, replyFields, startServer, waitUntil } from '../helpers/server.js'

// An attacker on the plaintext path between a primary and its mirror (a recording proxy the mirror advertises)
// replays what it recorded, alters a body on the way, or forges a reply. Each is refused and nothing is stored.

const SECRET = Buffer.from('a test cluster secret, long enough')
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const BYTES = Buffer.from('the bytes the owner deposited\n'.repeat(100))

async function cluster(t: Test) {
  const proxy = await recordingProxy(t)
  const common = { secret: SECRET, heartbeatIntervalMs: 60_000, replicaAckMs: 5_000 }
  const primary = await startServer(t, common)
  const mirror = await startServer(t, { ...common, join: `127.0.0.1:${primary.address.port}`, advertise: proxy.address })
  proxy.setTarget(mirror.address.port)
  await waitUntil('the mirror to join through the proxy', () => primary.mirrors().some((m) => m.up))
  const id = replyFields((await rawRequest(primary.address.port, ['op:hello\n'])).line).id_cliente!
  return { proxy, primary, mirror, id }
}

async function deposit(primary: DepositoServer, id: string, name: string, bytes: Buffer) {
  const header = `op:deposit|id_cliente:${id}|qtd_replicas:1|tamanho_arquivo:${bytes.length}|hash_arquivo:${sha(bytes)}|nome_arquivo:${name}\n`
  return replyFields((await rawRequest(primary.address.port, [header, bytes])).line)
}

/** The recorded `replicate` exchange, split into its header line, body bytes and trailer line. */
function replicateExchange(proxy: RecordingProxy, name: string) {
  const found = proxy.exchanges.find((e) => e.up.toString('latin1').startsWith('op:replicate|') && e.up.includes(`nome_arquivo:${name}|`))
  if (!found) throw new Error(`no replicate of ${name} was recorded`)
  const nl = found.up.indexOf(10) + 1
  const size = Number(/tamanho_arquivo:(\d+)/.exec(found.up.subarray(0, nl).toString())![1])
  return { ...found, header: found.up.subarray(0, nl), body: found.up.subarray(nl, nl + size), trailer: found.up.subarray(nl + size).toString() }
}

/** What an attacker without the secret can do to a body: change it and put the new hash in the trailer. */
function forge(body: Buffer, trailer: string): { body: Buffer; trailer: string } {
  const forged = Buffer.from(body)
  forged[0] ^= 0x20
  return { body: forged, trailer: trailer.replace(/hash_arquivo:[0-9a-f]{64}/, `hash_arquivo:${sha(forged)}`) }
}

t.test('a recorded replicate exchange replayed later is refused, and nothing is stored', async (t) => {
  const { proxy, primary, mirror, id } = await cluster(t)
  t.equal((await deposit(primary, id, 'f', BYTES)).status, 'ok')
  t.ok(mirror.store.stat(id, 'f'), 'the mirror took its copy through the proxy')
  const recorded = replicateExchange(proxy, 'f')
  await recorded.closed
  t.equal((await rawRequest(primary.address.port, [`op:delete|id_cliente:${id}|nome_arquivo:f\n`])).line.slice(0, 9), 'status:ok')
  t.notOk(mirror.store.stat(id, 'f'), 'the delete reached the mirror')

  const replay = replyFields((await rawRequest(mirror.address.port, [recorded.up])).line)
  t.match(replay, { status: 'error', code: 'UNAUTHORIZED', message: /replayed/ }, 'the same bytes again: refused by their nonce')
  t.notOk(mirror.store.stat(id, 'f'), 'nothing stored')

  const { body, trailer } = forge(recorded.body, recorded.trailer)
  const altered = replyFields((await rawRequest(mirror.address.port, [recorded.header, body, trailer])).line)
  t.match(altered, { status: 'error', code: 'UNAUTHORIZED' }, 'other bytes with their own hash in the trailer: refused')
  t.notOk(mirror.store.stat(id, 'f'), 'nothing stored')

  // A node that never saw this nonce (another node with the same secret, the primary itself): the request names
  // the mirror it was meant for, and only a mirror takes copies.
  const other = await startServer(t, { secret: SECRET })
  const elsewhere = replyFields((await rawRequest(other.address.port, [recorded.header, body, trailer])).line)
  t.match(elsewhere, { status: 'error', code: 'UNAUTHORIZED' }, 'replayed to another node: refused')
  t.notOk(other.store.hasClient(id) && other.store.stat(id, 'f'), 'nothing stored there either')
  const toPrimary = replyFields((await rawRequest(primary.address.port, [recorded.header, recorded.body, recorded.trailer])).line)
  t.match(toPrimary, { status: 'error', code: 'UNAUTHORIZED', message: /primary/ }, 'the genuine recording replayed to the primary: refused')
})

t.test('one byte of a replica altered in flight (its trailer hash recomputed) is refused; nothing is stored', async (t) => {
  const { proxy, primary, mirror, id } = await cluster(t)
  proxy.rewriteUp = (up) => {
    if (!up.toString('latin1').startsWith('op:replicate|')) return up
    const nl = up.indexOf(10) + 1
    const { body, trailer } = forge(up.subarray(nl, nl + BYTES.length), up.subarray(nl + BYTES.length).toString())
    return Buffer.concat([up.subarray(0, nl), body, Buffer.from(trailer)])
  }
  const reply = await deposit(primary, id, 'g', BYTES)
  t.not(reply.status, undefined, 'the deposit is answered')
  const recorded = replicateExchange(proxy, 'g')
  await recorded.closed
  t.match(replyFields(recorded.down.toString().split('\n')[0]!), { status: 'error', code: 'UNAUTHORIZED', message: /trailer/ }, 'the mirror refused it')
  t.notOk(mirror.store.stat(id, 'g'), 'the mirror stored nothing')
  t.equal(primary.store.stat(id, 'g')?.sha256, sha(BYTES), "the primary's own copy is the owner's bytes")
  t.same(primary.store.stat(id, 'g')?.mirrors, [], 'and the record names no mirror copy')
})

t.test('a reply altered in flight, unsealed, or sealed for another request is refused by PeerClient', async (t) => {
  const { proxy, mirror } = await cluster(t)
  const peers = new PeerClient(new PeerAuth(SECRET), { idleTimeoutMs: 5_000 })
  const ping = { op: 'ping', v: 1 }
  const answer = await peers.request(proxy.address, ping)
  t.equal(answer.no, mirror.identity.id, 'an untouched reply is believed')
  const genuine = proxy.exchanges.at(-1)!
  await genuine.closed

  proxy.rewriteDown = (down) => Buffer.from(down.toString().replace(/arquivos:\d+/, 'arquivos:999'))
  await t.rejects(peers.request(proxy.address, ping), { code: 'UNAUTHORIZED', message: /reply without a valid/ }, 'one field changed')
  proxy.rewriteDown = (down) => Buffer.from(down.toString().replace(/\|auth:[0-9a-f]+/, ''))
  await t.rejects(peers.request(proxy.address, ping), { code: 'UNAUTHORIZED' }, 'the seal stripped')

  // A fake peer that answers every request with the genuine reply recorded above.
  const { port } = await listen(t, (s) => {
    s.once('data', () => s.end(genuine.down))
    s.resume()
  })
  await t.rejects(peers.request(`127.0.0.1:${port}`, ping), { code: 'UNAUTHORIZED' }, 'a genuine reply to an earlier request')
  const { port: bare } = await listen(t, (s) => {
    s.once('data', () => s.end(`status:ok|no:${mirror.identity.id}|arquivos:0|bytes:0|livre:1\n`))
    s.resume()
  })
  await t.rejects(peers.request(`127.0.0.1:${bare}`, ping), { code: 'UNAUTHORIZED', message: /it said: status:ok/ }, 'an unsealed reply, however plausible')
})
