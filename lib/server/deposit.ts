import type { Writable } from 'node:stream'
import { placeReplicas } from '../cluster/placement.js'
import { openReplicaPushes } from '../cluster/replica-push.js'
import { settleReplicas } from '../cluster/replica-count.js'
import { retireStaleCopies } from './stale-copies.js'
import { DepositoError } from '../protocol/errors.js'
import { encodeFileInfo, type DepositRequest } from '../protocol/messages.js'
import type { FanOut } from '../streams/fan-out.js'
import type { Exchange } from './connection.js'
import { liveMirrors, replicaDeps, shownToClient, type ServerContext } from './context.js'
import { checkSpace, receiveFile, type Trailer } from './receive.js'

/**
 * A primary's deposit, from header to reply: refuse what cannot succeed before reading a byte of the body; open
 * a `replicate` to each placed mirror; stream the body to the local temp file and every mirror at once
 * (receive.ts); collect the mirrors' acks, then commit locally, naming exactly the mirrors that confirmed. A
 * mirror lost on the way is made up from the committed copy; mirrors holding a replaced version are retired.
 */
export async function deposit(request: DepositRequest, exchange: Exchange, ctx: ServerContext): Promise<void> {
  if (!ctx.store.hasClient(request.clientId)) throw unknownClient(request.clientId)
  const replicas = request.replicas ?? ctx.defaultReplicas
  const live = liveMirrors(ctx)
  if (replicas > live.length) {
    throw new DepositoError('NO_REPLICAS', `asked for ${replicas} replicas but this cluster has ${live.length} live mirrors`)
  }
  await checkSpace(request, ctx)
  const mirrors = placeReplicas(request.clientId, request.name, live, replicas)
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
  const previous = ctx.store.stat(request.clientId, request.name)
  let info = await receiveFile(request, exchange, ctx, targets, async ({ upload, size, sha256, fanOut }) => {
    const confirmed = ctx.cluster ? { mirrors: await confirm(fanOut) } : {}
    return upload.commit(request.clientId, request.name, { size, sha256, replicas, ...confirmed })
  })
  // A mirror lost on the way is made up from our own verified copy, if another one is live.
  if (ctx.cluster && (info.mirrors ?? []).length < replicas) info = await settleReplicas(replicaDeps(ctx, exchange), request.clientId, info, replicas)
  // Mirrors that held the version just replaced and took no copy of this one would keep it for ever.
  if (previous && previous.sha256 !== info.sha256) {
    const stale = (previous.mirrors ?? []).filter((m) => !(info.mirrors ?? []).includes(m))
    await retireStaleCopies(ctx, exchange, { owner: request.clientId, name: previous.name, sha256: previous.sha256 }, stale)
  }
  const held = info.mirrors ?? []
  exchange.log.info({ name: info.name, size: info.size, sha256: info.sha256, mirrors: held }, 'deposited')
  await exchange.ok({ ...encodeFileInfo(shownToClient(ctx, info)), copias: 1 + held.length, degradado: held.length < replicas ? 1 : 0 })
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
