import type { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { placeReplicas } from '../cluster/placement.js'
import { openReplicaPushes } from '../cluster/replica-push.js'
import { settleReplicas } from '../cluster/replica-count.js'
import { retireStaleCopies } from './stale-copies.js'
import { DepositoError } from '../protocol/errors.js'
import { encodeFileInfo, type DepositRequest, type ReplicateRequest } from '../protocol/messages.js'
import { BodyDecoder } from '../streams/body-decoder.js'
import { FanOut, type FanOutTarget } from '../streams/fan-out.js'
import { hashVerifier, type HashingStream } from '../streams/hash-verifier.js'
import type { FileInfo } from '../protocol/messages.js'
import type { Exchange } from './connection.js'
import { liveMirrors, replicaDeps, type ServerContext } from './context.js'

/**
 * A deposit, from header to reply: refuse what cannot succeed before reading a byte of the body; then stream
 * socket → body decoder → hash verifier → fan-out, which writes the local temp file and every replica stream at
 * once, the slowest paced by backpressure; commit locally only what hashed right, then collect the mirrors'
 * acks. Whatever fails, the temp file goes and the old version of the name stays.
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
  // Set once the verifier exists; read by each replica's encoder when the body ends.
  let trailer = () => ({ size: 0, hash: '' })
  const pushes = ctx.cluster
    ? await openReplicaPushes(ctx.cluster.peers, mirrors, { ...request, replicas }, () => trailer(), exchange.log)
    : []
  const targets: ReplicaTargets = (decoder, verifier) => {
    trailer = () => ({ size: decoder.result.size, hash: verifier.digest! })
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
  let info = await receive(request, replicas, exchange, ctx, targets, ctx.cluster ? confirm : undefined)
  // A mirror lost on the way is made up from our own verified copy, if another one is live.
  if (ctx.cluster && (info.mirrors ?? []).length < replicas) info = await settleReplicas(replicaDeps(ctx, exchange), request.clientId, info, replicas)
  // Mirrors that held the version just replaced and took no copy of this one would keep it for ever.
  if (previous && previous.sha256 !== info.sha256) {
    const stale = (previous.mirrors ?? []).filter((m) => !(info.mirrors ?? []).includes(m))
    await retireStaleCopies(ctx, exchange, { owner: request.clientId, name: previous.name, sha256: previous.sha256 }, stale)
  }
  const held = info.mirrors ?? []
  exchange.log.info({ name: info.name, size: info.size, sha256: info.sha256, mirrors: held }, 'deposited')
  await exchange.ok({ ...encodeFileInfo(info), copias: 1 + held.length, degradado: held.length < replicas ? 1 : 0 })
}

type ReplicaTargets = (decoder: BodyDecoder, verifier: HashingStream) => FanOutTarget[]

/** A mirror's side of a replica: the same receiving path, on behalf of the owner, with no fan-out. */
export async function replicate(request: ReplicateRequest, exchange: Exchange, ctx: ServerContext): Promise<void> {
  await ctx.store.adoptClient(request.clientId)
  await checkSpace(request, ctx)
  const info = await receive(request, request.replicas ?? 0, exchange, ctx, () => [])
  exchange.log.info({ name: info.name, size: info.size, sha256: info.sha256 }, 'replica stored')
  await exchange.ok(encodeFileInfo(info))
}

async function checkSpace(request: { size: number | null }, ctx: ServerContext): Promise<void> {
  if (request.size !== null && request.size > (await ctx.store.freeBytes())) {
    throw new DepositoError('NO_SPACE', `the server has no room for ${request.size} bytes`)
  }
}

async function receive(
  request: DepositRequest | ReplicateRequest,
  replicas: number,
  exchange: Exchange,
  ctx: ServerContext,
  replicaTargets: ReplicaTargets,
  /** Runs once every byte is verified and durable locally, before the commit; says which mirrors hold copies. */
  confirm?: (fanOut: FanOut) => Promise<string[]>,
): Promise<FileInfo> {
  const upload = ctx.store.beginUpload()
  try {
    const decoder = new BodyDecoder({ size: request.size, trailer: request.hash === null, maxTrailerBytes: exchange.limits.maxHeaderBytes })
    const verifier = hashVerifier({ expected: () => request.hash ?? decoder.result.hash })
    const targets = [{ name: 'local', stream: upload.stream, required: true }, ...replicaTargets(decoder, verifier)]
    const fanOut = new FanOut(targets, { stallTimeoutMs: ctx.cluster?.replicaStallMs ?? 30_000 })
    await pipeline(exchange.body, decoder, verifier, fanOut)
    const mirrors = await confirm?.(fanOut)
    return await upload.commit(request.clientId, request.name, {
      size: decoder.result.size,
      sha256: verifier.digest!,
      replicas,
      ...(mirrors ? { mirrors } : {}),
    })
  } finally {
    await upload.discard()
  }
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
