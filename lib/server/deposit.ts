import type { Writable } from 'node:stream'
import { placeReplicas } from '../cluster/placement.js'
import { openReplicaPushes } from '../cluster/replica-push.js'
import { settleReplicas } from '../cluster/replica-count.js'
import { retireStaleCopies } from './stale-copies.js'
import { DepositoError } from '../protocol/errors.js'
import { type DepositRequest } from '../protocol/messages.js'
import { encodeFileInfo, type FileInfo } from '../protocol/replies.js'
import type { FanOut } from '../streams/fan-out.js'
import type { Exchange } from './connection.js'
import { liveMirrors, refuseUnreachableCount, replicaDeps, shownToClient, type ServerContext } from './context.js'
import { checkSpace, receiveFile, type ReceiveFrom, type Trailer } from './receive.js'

/**
 * A primary's deposit, from header to reply: refuse what cannot succeed before reading a byte of the body; open
 * a `replicate` to each placed mirror; stream the body to the local temp file and every mirror at once
 * (receive.ts); collect the mirrors' acks, then commit locally, naming exactly the mirrors that confirmed. A
 * mirror lost on the way is made up from the committed copy; mirrors holding the version the commit replaced
 * are tombstoned before it and retired after. Fewer live mirrors than asked for is a degraded deposit, completed
 * by the repair pass; more than the cluster has is refused.
 */
export async function deposit(request: DepositRequest, exchange: Exchange, ctx: ServerContext, from?: ReceiveFrom): Promise<void> {
  if (!ctx.store.hasClient(request.clientId)) throw unknownClient(request.clientId)
  const replicas = request.replicas ?? ctx.defaultReplicas
  refuseUnreachableCount(ctx, replicas)
  await checkSpace(request, ctx)
  // A resumed body is not fanned out: no mirror has its prefix. Its copies are made from the verified file after
  // the commit, as a lost mirror's substitute is (below).
  const resumed = (from?.offset ?? 0) > 0
  const mirrors = resumed ? [] : placeReplicas(request.clientId, request.name, liveMirrors(ctx), replicas)
  // Set once the body's decoder and verifier exist; read by each replica's encoder when the body ends.
  let trailer: Trailer = () => ({ size: 0, hash: '' })
  const pushes = ctx.cluster
    ? await openReplicaPushes(ctx.cluster.peers, mirrors, { ...request, replicas }, () => trailer(), exchange.log)
    : []
  const targets = (t: Trailer) => {
    trailer = t
    return pushes.map((p) => ({ name: p.mirror, stream: p.encoder as Writable, required: false }))
  }
  // The mirrors' answers are collected before the local commit, so the record names exactly who holds a copy.
  const confirm = async (fanOut: FanOut): Promise<string[]> => {
    for (const { name, error } of fanOut.dropped) exchange.log.warn({ mirror: name, err: error }, 'mirror cut off mid-deposit')
    const acked = await Promise.all(
      pushes
        .filter((p) => fanOut.live.includes(p.mirror))
        .map((p) =>
          withTimeout(p.reply, ctx.cluster!.replicaAckMs).then(
            () => p.mirror,
            (err: unknown) => exchange.log.warn({ mirror: p.mirror, err }, 'mirror did not confirm its copy'),
          ),
        ),
    )
    return acked.filter((m): m is string => typeof m === 'string')
  }
  let stale: string[] = []
  const committed = await receiveFile(request, exchange, ctx, targets, async ({ upload, size, sha256, fanOut }) => {
    const confirmed = ctx.cluster ? { mirrors: await confirm(fanOut) } : {}
    const beforeReplace = async (old: FileInfo) => {
      stale = await rememberStale(ctx, request.clientId, old, sha256, confirmed.mirrors ?? [])
    }
    return upload.commit(request.clientId, request.name, { size, sha256, replicas, ...confirmed }, { beforeReplace })
  }, from)
  let { info } = committed
  // A mirror lost on the way is made up from our own verified copy, if another one is live.
  if (ctx.cluster && (info.mirrors ?? []).length < replicas) info = await settleReplicas(replicaDeps(ctx, exchange), request.clientId, info, replicas)
  // Dropped now where they can be (a drop names its version, so a mirror given the new one since keeps it).
  const { replaced } = committed
  if (replaced) await retireStaleCopies(ctx, exchange, { owner: request.clientId, name: replaced.name, sha256: replaced.sha256 }, stale)
  const held = info.mirrors ?? []
  exchange.log.info({ name: info.name, size: info.size, sha256: info.sha256, mirrors: held }, 'deposited')
  await exchange.ok({ ...encodeFileInfo(shownToClient(ctx, info)), copias: 1 + held.length, degradado: held.length < replicas ? 1 : 0 })
}

/**
 * The mirrors that hold `old`, the version a commit is about to supersede, and took no copy of the new one: they
 * would keep `old` for ever. Tombstoned before the record forgets them (BlobStore.commitUpload's beforeReplace),
 * so a crash right after the commit still leaves them to be dropped; read under the store's lock, so a deposit
 * that raced this one and committed first is the version retired, not the record seen before the body.
 */
async function rememberStale(ctx: ServerContext, owner: string, old: FileInfo, sha256: string, kept: string[]): Promise<string[]> {
  if (!ctx.cluster || old.sha256 === sha256) return []
  const stale = (old.mirrors ?? []).filter((m) => !kept.includes(m))
  if (stale.length > 0) await ctx.cluster.tombstones.add(stale.map((mirror) => ({ owner, name: old.name, sha256: old.sha256, mirror })))
  return stale
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DepositoError('TIMEOUT', `no answer in ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export function unknownClient(id: string): DepositoError {
  return new DepositoError('UNKNOWN_CLIENT', `id_cliente ${id} was not issued by this server`)
}
