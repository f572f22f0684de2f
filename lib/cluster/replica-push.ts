import { pipeline } from 'node:stream/promises'
import type { Logger } from 'pino'
import type { Fields } from '../protocol/fields.js'
import { requestFields, type ReplicateRequest } from '../protocol/messages.js'
import { BodyEncoder } from '../streams/body-encoder.js'
import type { PeerClient } from './peer-client.js'

/**
 * One replica on its way to a mirror: a BodyEncoder the fan-out writes the file's bytes into, framed and signed as
 * a `replicate` request, and the mirror's answer. The trailer is read when the encoder ends, by which time the
 * primary's hash verifier has seen every byte; if the primary's own check fails, the fan-out destroys the
 * encoder, the socket goes with it, and the mirror throws its temp file away.
 */
export interface ReplicaPush {
  mirror: string
  encoder: BodyEncoder
  reply: Promise<Fields>
}

export async function openReplicaPushes(
  peers: PeerClient,
  mirrors: string[],
  request: Omit<ReplicateRequest, 'op'>,
  trailer: () => { size: number; hash: string },
  log: Logger,
): Promise<ReplicaPush[]> {
  const opened = await Promise.all(
    mirrors.map(async (mirror): Promise<ReplicaPush | undefined> => {
      try {
        const { socket, reply, seal } = await peers.open(mirror, requestFields({ ...request, op: 'replicate', hash: null }))
        const encoder = new BodyEncoder({ chunked: request.size === null, trailer, seal })
        pipeline(encoder, socket).catch((err: unknown) => log.warn({ mirror, err }, 'replica stream failed'))
        return { mirror, encoder, reply }
      } catch (err) {
        log.warn({ mirror, err }, 'could not reach mirror for a replica')
        return undefined
      }
    }),
  )
  return opened.filter((p): p is ReplicaPush => p !== undefined)
}
