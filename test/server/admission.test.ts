import t from 'tap'
import { Admission, type Admitted } from '../../lib/server/admission.js'
import type { DepositoError } from '../../lib/protocol/errors.js'

// Who gets a slot: the oldest pending connection goes first, peers are counted apart.

function conn(name: string, refused: string[]): Admitted {
  return { refuse: (err: DepositoError) => refused.push(`${name}:${err.code}`) }
}

t.test('a full server evicts its oldest pending connection, and refuses only when none is pending', async (t) => {
  const refused: string[] = []
  const admission = new Admission({ maxConnections: 3, maxPeerConnections: 1 })
  const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((n) => conn(n, refused))
  for (const x of [a, b, c]) {
    t.equal(admission.makeRoom(), undefined)
    admission.add(x!)
  }
  admission.headerDone(b!)
  t.equal(admission.makeRoom(), undefined, 'room made for d')
  t.same(refused, ['a:BUSY'], 'a, the oldest pending, went')
  admission.add(d!)
  t.equal(admission.makeRoom(), undefined, 'room made for e')
  t.same(refused, ['a:BUSY', 'c:BUSY'], 'then c; b has its header in and stays')
  admission.add(e!)
  admission.headerDone(d!)
  admission.headerDone(e!)
  admission.headerDone(a!)
  t.same(admission.counts, { pending: 0, clients: 3, peers: 0 }, 'an evicted connection does not come back as a client')
  t.match(admission.makeRoom(), { code: 'BUSY', message: /limit of 3 connections/ }, 'nothing pending: the newcomer is refused')
  t.equal(refused.length, 2)
})

t.test('peers have a budget of their own, and leave the clients\' slots free', async (t) => {
  const admission = new Admission({ maxConnections: 1, maxPeerConnections: 1 })
  const [p, q, r] = ['p', 'q', 'r'].map((n) => conn(n, []))
  admission.add(p!)
  admission.markPeer(p!)
  t.same(admission.counts, { pending: 0, clients: 0, peers: 1 }, 'a peer known while pending moves straight over')
  t.equal(admission.makeRoom(), undefined, 'its client slot is free again')
  admission.add(q!)
  admission.headerDone(q!)
  t.throws(() => admission.markPeer(q!), { code: 'BUSY', message: /limit of 1 peer connections/ })
  t.same(admission.counts, { pending: 0, clients: 1, peers: 1 }, 'refused as a peer, it keeps its client slot until it closes')
  admission.markPeer(p!)
  t.equal(admission.counts.peers, 1, 'marking twice counts once')
  admission.remove(p!)
  admission.markPeer(p!)
  t.equal(admission.counts.peers, 0, 'a connection already gone is not brought back')
  admission.markPeer(q!)
  admission.remove(q!)
  admission.add(r!)
  admission.remove(r!)
  t.same(admission.counts, { pending: 0, clients: 0, peers: 0 })
})
