import { DepositoError } from '../protocol/errors.js'
import { settleReplicas, type ReplicaDeps } from './replica-count.js'
import { clientTag } from '../protocol/client-tag.js'

/**
 * A mirror leaving the cluster for good (`bin/server remove-mirror`): the disk died, the machine is gone. It is
 * listed as removed (so it can never join again under that id and bring stale copies back), its tombstones go
 * (no drop will ever reach it), it comes off every record, and each of those files is copied again to the
 * remaining live mirrors. Files short of a live mirror to go to are left to the repair pass, which restores
 * counts as mirrors join.
 *
 * A mirror that is up is refused: its copies would stay on it, unaccounted for, and it would go on asking to
 * join. Removing one already removed is not an error (the command may be retried after a lost reply).
 */
export interface Removal {
  id: string
  /** Files that got a new copy in place of the removed mirror's. */
  copied: number
}

/** Attempts to take the mirror off one record that keeps changing under us (each attempt reads it afresh). */
const ATTEMPTS = 4

export async function removeMirror(deps: ReplicaDeps, node: string): Promise<Removal> {
  const { store, membership, tombstones, log } = deps
  const member = membership.find(node)
  if (!member) {
    if (membership.isRemoved(node)) return { id: node, copied: 0 }
    throw new DepositoError('NOT_FOUND', `no mirror ${node} in this cluster (give its node id or its address as status shows it)`)
  }
  if (member.up) {
    throw new DepositoError('USAGE', `mirror ${member.id} at ${member.address} is up; stop it before removing it (its copies would stay there, unaccounted for)`)
  }
  const { id } = member
  await membership.remove(id)
  await tombstones.remove(...tombstones.all().filter((t) => t.mirror === id))
  log.warn({ node: id, mirror: member.address }, 'mirror removed from the cluster')
  let copied = 0
  for (const { owner, info } of [...store.allFiles()]) {
    if (!info.mirrors?.includes(id)) continue
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const current = store.stat(owner, info.name)
      if (!current?.mirrors?.includes(id)) break
      const kept = current.mirrors.filter((m) => m !== id)
      const updated = await store.updateRecordIf(owner, current, { replicas: current.replicas, mirrors: kept })
      if (!updated) continue
      const settled = await settleReplicas(deps, owner, updated, updated.replicas).catch((err: unknown) => {
        log.warn({ owner: clientTag(owner), name: info.name, err: (err as Error).message }, 'could not copy a file again after removing a mirror')
        return updated
      })
      if ((settled.mirrors ?? []).some((m) => !kept.includes(m))) copied++
      break
    }
  }
  return { id, copied }
}
