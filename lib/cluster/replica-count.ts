import type { Logger } from 'pino'
import type { FileInfo } from '../protocol/messages.js'
import type { BlobStore } from '../store/blob-store.js'
import { pushCopies } from './copy-push.js'
import type { Membership } from './membership.js'
import type { PeerClient } from './peer-client.js'
import { placeReplicas } from './placement.js'

/**
 * Brings a file to `replicas` copies on live mirrors, from the primary's own verified copy: pushes it to more
 * mirrors (placement order, skipping those that hold it) or drops it from the extras, then records the result.
 * A deposit uses it for substitutes, `replicas` to change a count, the repair pass to restore one. Copies on
 * mirrors that are down are not counted, and are forgotten once the count is met without them.
 */
export interface ReplicaDeps {
  store: BlobStore
  peers: PeerClient
  membership: Membership
  log: Logger
}

export async function settleReplicas(deps: ReplicaDeps, owner: string, info: FileInfo, replicas: number): Promise<FileInfo> {
  const { store, peers, membership, log } = deps
  const live = membership.live()
  const holders = (info.mirrors ?? []).filter((m) => live.includes(m))
  let mirrors = holders
  if (holders.length < replicas) {
    const candidates = placeReplicas(owner, info.name, live.filter((m) => !holders.includes(m)), live.length)
    mirrors = [...holders, ...(await pushCopies(store, peers, owner, info, candidates, replicas - holders.length, log))]
  } else if (holders.length > replicas) {
    const extras = holders.slice(replicas)
    await Promise.all(
      extras.map((mirror) =>
        peers
          .request(mirror, { op: 'drop', id_cliente: owner, nome_arquivo: info.name })
          .catch((err: unknown) => log.warn({ mirror, err: (err as Error).message }, 'could not drop an extra copy')),
      ),
    )
    mirrors = holders.slice(0, replicas)
  }
  const unchanged = replicas === info.replicas && mirrors.length === (info.mirrors ?? []).length && mirrors.every((m) => info.mirrors?.includes(m))
  if (unchanged) return info
  return (await store.updateRecord(owner, info.name, info.sha256, { replicas, mirrors })) ?? info
}
