import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import { formatAddress } from '../net/address.js'
import type { Membership } from './membership.js'
import type { PeerClient } from './peer-client.js'

/**
 * The primary's view of its mirrors: every `intervalMs` it pings each one (signed), marks it up with the figures
 * it reports, or down if it does not answer. Returns a stop function; timers are unref'd so a heartbeat never
 * keeps a stopping node alive.
 */
export function startHeartbeats(membership: Membership, peers: PeerClient, intervalMs: number, log: Logger): () => void {
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  const beat = async () => {
    await Promise.all(
      membership.all().map(async ({ address, up }) => {
        try {
          const reply = await peers.request(address, { op: 'ping' })
          if (!up) log.info({ mirror: address }, 'mirror is up')
          membership.markUp(address, { files: Number(reply.arquivos), bytes: Number(reply.bytes), free: Number(reply.livre) })
        } catch (err) {
          if (up) log.warn({ mirror: address, err: (err as Error).message }, 'mirror is down')
          membership.markDown(address)
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
 * The address a mirror gives its primary: `--advertise` if set, else where it listens. A wildcard listen address
 * (0.0.0.0, ::) cannot be dialled, so then it is the local address of the connection that reached the primary:
 * an interface the primary can reach it on.
 */
export function advertisedAddress(host: string, port: number, advertise: string | undefined, localAddress: string | undefined): string {
  if (advertise) return advertise
  const wildcard = host === '0.0.0.0' || host === '::'
  return formatAddress({ host: wildcard && localAddress ? localAddress : host, port })
}

/** A mirror registering with its primary; retried (up to every 5 s) until it succeeds or `signal` aborts. */
export async function joinPrimary(peers: PeerClient, primary: string, node: (socket: Socket) => string, log: Logger, signal: AbortSignal): Promise<void> {
  for (let delay = 250; !signal.aborted; delay = Math.min(delay * 2, 5000)) {
    try {
      let sent = ''
      await peers.request(primary, (socket) => ({ op: 'join', node: (sent = node(socket)) }))
      log.info({ primary, node: sent }, 'joined primary')
      return
    } catch (err) {
      log.warn({ primary, err: (err as Error).message, retryInMs: delay }, 'could not join primary yet')
      await new Promise((resolve) => setTimeout(resolve, delay).unref())
    }
  }
}
