import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import { DepositoError } from '../protocol/errors.js'
import type { JoinRequest } from '../protocol/messages.js'
import type { Membership } from './membership.js'
import type { NodeIdentity } from './node-identity.js'
import type { PeerClient } from './peer-client.js'

/**
 * Joining, from both ends. A mirror names the address to dial it at and its node id; the primary believes
 * neither until it has dialled that address and been answered by that id. Checking the id, not the address,
 * is what makes self-joins impossible however the address is spelled (loopback, a wildcard, an interface, a
 * name): our own address answers with our own id. A primary that took itself for a mirror would send itself
 * `drop` when a count is lowered and delete its only copy.
 */
export async function verifyJoiner(request: JoinRequest, self: { id: string }, membership: Membership, pinger: PeerClient): Promise<string> {
  const { node, nodeId } = request
  if (nodeId === undefined) throw new DepositoError('USAGE', `the node at ${node} sent no node id (it predates node ids); upgrade it`)
  if (nodeId === self.id) {
    throw new DepositoError('USAGE', `the joining node has this node's own id ${nodeId}: its data dir is a copy of this one; give the mirror an empty --data`)
  }
  if (membership.isRemoved(nodeId)) throw new DepositoError('USAGE', `node ${nodeId} was removed from this cluster; wipe its data dir to join again`)
  let answer: string | undefined
  try {
    // No `no` and no `primario`: any node answers this ping with its id, even a mirror of another primary
    // (which then refuses our join reply itself, and our heartbeats after that).
    answer = (await pinger.request(node, { op: 'ping' })).no
  } catch (err) {
    throw new DepositoError('USAGE', `could not check the joining node at ${node} (${(err as Error).message}); start it with --advertise HOST:PORT, an address this node can dial`)
  }
  if (answer === self.id) {
    throw new DepositoError(
      'USAGE',
      `${node} answers as this very node, which cannot be its own mirror; start the mirror with --advertise HOST:PORT (an address the primary reaches it at) or a --host other than loopback`,
    )
  }
  if (answer !== nodeId) throw new DepositoError('USAGE', `${node} answers as node ${answer ?? '(none)'}, not as the joining node ${nodeId}`)
  return nodeId
}

/**
 * A mirror registering with its primary (at the address its node.json holds now: the primary's pings keep it
 * current); retried, up to every 5 s, until it succeeds, `signal` aborts, or another primary answers. The first
 * primary to accept it is recorded; a different one later is refused for good: a mirror serves one cluster.
 */
export async function joinPrimary(peers: PeerClient, identity: NodeIdentity, node: (socket: Socket) => string, log: Logger, signal: AbortSignal): Promise<void> {
  for (let delay = 250; !signal.aborted; delay = Math.min(delay * 2, 5000)) {
    const primary = identity.primary!.address
    try {
      let sent = ''
      const reply = await peers.request(primary, (socket) => ({ op: 'join', node: (sent = node(socket)), no: identity.id }))
      if (reply.no !== undefined && !(await identity.acceptPrimary(reply.no))) {
        log.error(
          { primary, answeredAs: reply.no, expected: identity.primary!.id },
          `the node at ${primary} is not this mirror's primary (node ${identity.primary!.id}); not joining it`,
        )
        return
      }
      log.info({ primary, node: sent, primaryId: reply.no }, 'joined primary')
      return
    } catch (err) {
      log.warn({ primary, err: (err as Error).message, retryInMs: delay }, 'could not join primary yet')
      await new Promise((resolve) => setTimeout(resolve, delay).unref())
    }
  }
}
