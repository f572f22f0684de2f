import t from 'tap'
import { Router } from '../../lib/client/router.js'
import { parseAddress } from '../../lib/net/address.js'
import { NODE_A, NODE_B, abandoned, fakeNode, ops } from '../helpers/fake-node.js'
import { closedPort, listen } from '../helpers/fake-server.js'

// Short enough to keep the suite fast, long enough for a loaded machine to answer a local probe.
const TIMEOUT_MS = 1_500


const router = (...addresses: string[]) => new Router(addresses.map(parseAddress), TIMEOUT_MS)

t.test('a probe reads who answers: node, role, cluster, a mirror\'s primary', async (t) => {
  const primary = await fakeNode(t, { node: `no:${NODE_A}|papel:primario|cluster:${NODE_A}` })
  const mirror = await fakeNode(t, { node: `no:${NODE_B}|papel:espelho|cluster:${NODE_A}|primario:${primary.address}` })
  const r = router(primary.address)
  t.same(await r.probe(parseAddress(primary.address)), {
    target: { host: '127.0.0.1', port: primary.port },
    address: primary.address,
    role: 'primary',
    node: NODE_A,
    cluster: NODE_A,
  })
  t.match(await r.probe(parseAddress(mirror.address)), { role: 'mirror', node: NODE_B, cluster: NODE_A, primary: primary.address })
  t.same(ops(primary), ['node'], 'one op:node, nothing else')
})

t.test('today\'s placeholder (papel only) is a primary of no known cluster', async (t) => {
  const placeholder = await fakeNode(t, { node: 'papel:primario' })
  const answer = await router(placeholder.address).probe(parseAddress(placeholder.address))
  t.same(answer, { target: parseAddress(placeholder.address), address: placeholder.address, role: 'primary' })
})

t.test('an error reply to op:node is a server older than it: a primary, as before', async (t) => {
  const { port } = await listen(t, (s) => {
    s.once('data', () => s.end('status:error|code:BAD_HEADER|message:unknown op "node"\n'))
  })
  const address = `127.0.0.1:${port}`
  t.same(await router(address).probe(parseAddress(address)), { target: { host: '127.0.0.1', port }, address, role: 'primary' })
})

t.test('first(): a node that accepts and never answers is passed over, and its socket abandoned', async (t) => {
  const frozen = await fakeNode(t, { node: null })
  const mirror = await fakeNode(t, { node: `no:${NODE_B}|papel:espelho|cluster:${NODE_A}|primario:${frozen.address}` })
  const { answer, silent } = await router(frozen.address, mirror.address).first()
  t.equal(answer.address, mirror.address)
  t.same([...silent], [frozen.address])
  t.equal(frozen.sockets.length, 1)
  await abandoned(frozen.sockets[0]!)
  t.pass('the client hung up on the frozen node')
})

t.test('first(): with every node silent, the reason for each', async (t) => {
  const refused = await closedPort()
  const frozen = await fakeNode(t, { node: null })
  await t.rejects(router(frozen.address).first(), { code: 'UNREACHABLE', message: /did not answer within 1\.5 s/ }, 'one node: its own error')
  const err = await router(`127.0.0.1:${refused}`, frozen.address).first().catch((e: unknown) => e)
  t.match(err, { code: 'UNREACHABLE', message: /^no node answered: no server at 127\.0\.0\.1:\d+ .*; the server at 127\.0\.0\.1:\d+ accepted the connection/ })
})

t.test('first(): a node that says "not now" (SHUTTING_DOWN, BUSY) is passed over', async (t) => {
  const { port } = await listen(t, (s) => s.once('data', () => s.end('status:error|code:SHUTTING_DOWN|message:stopping\n')))
  const mirror = await fakeNode(t, { node: 'papel:espelho' })
  const { answer } = await router(`127.0.0.1:${port}`, mirror.address).first()
  t.equal(answer.address, mirror.address, 'a stopping node is passed over like a silent one')
  await t.rejects(router(`127.0.0.1:${port}`).first(), { code: 'SHUTTING_DOWN' }, 'alone, its refusal is the answer')
})

t.test('forRead: the primary when the first answer is a mirror and the primary answers', async (t) => {
  const primary = await fakeNode(t, { node: `no:${NODE_A}|papel:primario|cluster:${NODE_A}` })
  const mirror = await fakeNode(t, { node: `no:${NODE_B}|papel:espelho|cluster:${NODE_A}|primario:${primary.address}` })
  const r = router(mirror.address)
  const route = await r.forRead(await r.first())
  t.same(route, { node: { target: parseAddress(primary.address), address: primary.address, role: 'primary', node: NODE_A, cluster: NODE_A } })
})

t.test('forRead: the mirror, saying so, when its primary is silent or unknown', async (t) => {
  const frozen = await fakeNode(t, { node: null })
  const mirror = await fakeNode(t, { node: `no:${NODE_B}|papel:espelho|primario:${frozen.address}` })
  let r = router(mirror.address)
  t.match(await r.forRead(await r.first()), { node: { address: mirror.address, role: 'mirror' }, missedPrimary: frozen.address })
  await abandoned(frozen.sockets[0]!)
  // Listed first and already found silent: not asked a second time.
  r = router(frozen.address, mirror.address)
  t.match(await r.forRead(await r.first()), { node: { address: mirror.address }, missedPrimary: frozen.address })
  t.equal(frozen.sockets.length, 2, 'one probe for the listed address, none again for the named primary')
  const orphan = await fakeNode(t, { node: 'papel:espelho' })
  r = router(orphan.address)
  t.match(await r.forRead(await r.first()), { node: { address: orphan.address }, missedPrimary: '' })
})

t.test('forWrite: the primary; through a mirror, the primary it names; never the mirror', async (t) => {
  const primary = await fakeNode(t, { node: `no:${NODE_A}|papel:primario|cluster:${NODE_A}` })
  const mirror = await fakeNode(t, { node: `no:${NODE_B}|papel:espelho|primario:${primary.address}` })
  let r = router(primary.address, mirror.address)
  t.equal((await r.forWrite(await r.first())).address, primary.address)
  r = router(mirror.address)
  t.equal((await r.forWrite(await r.first())).address, primary.address, 'sent where the mirror points')

  const frozen = await fakeNode(t, { node: null })
  const stranded = await fakeNode(t, { node: `papel:espelho|primario:${frozen.address}` })
  r = router(stranded.address)
  await t.rejects(r.forWrite(await r.first()), {
    code: 'UNREACHABLE',
    message: `writes go to the primary at ${frozen.address}, which does not answer; mirror ${stranded.address} takes no writes`,
  })
  r = router(frozen.address, stranded.address)
  await t.rejects(r.forWrite(await r.first(), 'new client ids'), { code: 'UNREACHABLE', message: /^new client ids go to the primary at/ })
  t.equal(frozen.sockets.length, 2, 'a primary found silent in the list is not probed again')

  const orphan = await fakeNode(t, { node: 'papel:espelho' })
  r = router(orphan.address)
  await t.rejects(r.forWrite(await r.first()), { code: 'NOT_PRIMARY', message: /does not know its primary's address/ })
})

t.test('follow: once; a "primary" that answers as a mirror is NOT_PRIMARY, naming where it points', async (t) => {
  const far = await fakeNode(t, { node: 'papel:primario' })
  const second = await fakeNode(t, { node: `papel:espelho|primario:${far.address}` })
  const r = router(second.address)
  await t.rejects(r.follow('127.0.0.1:1', second.address, 'writes'), {
    code: 'NOT_PRIMARY',
    message: `127.0.0.1:1 names ${second.address} as its primary, but ${second.address} answers as a mirror`,
    details: { primary: far.address },
  })
  t.same(far.headers, [], 'not followed a second time')
  await t.rejects(r.follow('m:1', 'not an address:x', 'writes'), { code: 'UNREACHABLE' }, 'an unreadable address answers no more than a dead one')
})
