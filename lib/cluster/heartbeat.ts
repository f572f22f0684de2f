import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import { formatAddress } from '../net/address.js'
import type { Membership } from './membership.js'
import type { PeerClient } from './peer-client.js'

/** How a primary names itself in each ping: its id, and an address its mirrors can reach it at. */
export interface PingSender {
  id: string
  address: (socket: Socket) => string
}

/**
 * The primary's view of its mirrors: every `intervalMs` it pings each one (signed, naming the id it expects
 * there and itself), marks it up with the figures it reports, or down if it does not answer — or answers as
 * another node: an address is not a node, and whoever took it over holds none of the copies our records place
 * there. Returns a stop function; timers are unref'd so a heartbeat never keeps a stopping node alive.
 */
export function startHeartbeats(membership: Membership, peers: PeerClient, self: PingSender, intervalMs: number, log: Logger): () => void {
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  const beat = async () => {
    await Promise.all(
      membership.all().map(async ({ id, address, up, answeredAs }) => {
        try {
          const reply = await peers.request(id, (socket) => ({ op: 'ping', no: id, primario: self.id, endereco: self.address(socket) }))
          if (reply.no !== id) {
            if (answeredAs !== reply.no) log.warn({ node: id, mirror: address, answeredAs: reply.no }, `address ${address} now answers as node ${reply.no}`)
            membership.markDown(id, reply.no ?? '')
            return
          }
          if (!up) log.info({ node: id, mirror: address }, 'mirror is up')
          membership.markUp(id, { files: Number(reply.arquivos), bytes: Number(reply.bytes), free: Number(reply.livre) })
        } catch (err) {
          if (up) log.warn({ node: id, mirror: address, err: (err as Error).message }, 'mirror is down')
          membership.markDown(id)
        }
      }),
    )
    if (!stopped) timer = setTimeout(beat, intervalMs).unref()
  }
  void beat()
  return () => {
    stopped = true
    clearTimeout(timer)
  }
}

/**
 * The address a node gives its peers: `--advertise` if set, else where it listens. A wildcard listen address
 * (0.0.0.0, ::) cannot be dialled, so then it is the local address of the connection that reached the peer:
 * an interface the peer can reach it on.
 */
export function advertisedAddress(host: string, port: number, advertise: string | undefined, localAddress: string | undefined): string {
  if (advertise) return advertise
  const wildcard = host === '0.0.0.0' || host === '::'
  return formatAddress({ host: wildcard && localAddress ? localAddress : host, port })
}
