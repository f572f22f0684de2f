import { DepositoError } from '../protocol/errors.js'
import type { DepositRequest, OffsetRequest } from '../protocol/messages.js'
import type { Exchange } from './connection.js'
import { refuseUnreachableCount, type ServerContext } from './context.js'
import { deposit, unknownClient } from './deposit.js'
import { checkSpace } from './receive.js'

/**
 * The primary's side of a resumable deposit (a deposit naming an `upload` token, PROTOCOL.md "Resumable
 * transfers"). The body goes into the owner's partial upload instead of a temp file; everything after that is an
 * ordinary deposit (deposit.ts), handed the partial as its sink. Before the body: claim the token (one writer at a
 * time), check the request against the partial's record, cut the partial to the offset the client sends from and
 * re-hash what stays, so the final sha256 covers the whole file and nothing on disk is taken on trust.
 */
export async function resumableDeposit(request: DepositRequest & { upload: string }, exchange: Exchange, ctx: ServerContext): Promise<void> {
  const owner = request.clientId
  const token = request.upload
  const offset = request.offset ?? 0
  // The parser refuses `tamanho_arquivo:*` with an upload: a pipe cannot be resumed.
  const size = request.size!
  if (!ctx.store.hasClient(owner)) throw unknownClient(owner)
  if (offset > size) throw new DepositoError('BAD_HEADER', `offset ${offset} is past the end of a ${size}-byte file`)
  // Refused before a partial is made or cut: a request that cannot succeed changes nothing.
  refuseUnreachableCount(ctx, request.replicas ?? ctx.defaultReplicas)
  await checkSpace({ size: size - offset }, ctx)
  const release = ctx.partials.claim(owner, token)
  try {
    const state = await ctx.partials.get(owner, token)
    if (state && (state.record.name !== request.name || state.record.size !== size)) {
      const { name, size: was } = state.record
      throw new DepositoError('BAD_HEADER', `upload ${token} is of ${JSON.stringify(name)} (${was} bytes), not of ${JSON.stringify(request.name)} (${size} bytes)`)
    }
    if (offset > 0 && !state) throw noPartial(token)
    if (state && state.length < offset) throw new DepositoError('BAD_HEADER', `upload ${token} holds ${state.length} bytes, fewer than offset ${offset}`)
    if (!state) await ctx.partials.create(owner, token, request.name, size)
    const started = Date.now()
    const seed = await exchange.whileWorking(() => ctx.partials.resumeAt(owner, token, offset))
    if (offset > 0) exchange.log.info({ upload: token, offset, rehashMs: Date.now() - started }, 'resuming a partial upload')
    await deposit(request, exchange, ctx, { sink: () => ctx.partials.sink(ctx.store, owner, token), offset, seed })
  } catch (err) {
    if (!(err instanceof DepositoError && err.code === 'HASH_MISMATCH')) await logKept(exchange, ctx, owner, token)
    throw err
  } finally {
    release()
  }
}

/** What a failed resumable deposit left for the next try: an operator can follow a transfer across its cuts. */
async function logKept(exchange: Exchange, ctx: ServerContext, owner: string, token: string): Promise<void> {
  let state
  try {
    state = await ctx.partials.get(owner, token)
  } catch {
    // An unreadable record: the error the request already has is the one to report.
  }
  if (state) exchange.log.info({ upload: token, offset: state.length }, 'partial upload kept')
}

/** `op:offset`: how much of a partial upload this primary holds, for the client to send the rest. */
export async function partialOffset(request: OffsetRequest, exchange: Exchange, ctx: ServerContext): Promise<void> {
  const { clientId: owner, upload: token } = request
  // A length read while another connection appends would be stale before the client could use it.
  ctx.partials.checkFree(owner, token)
  const state = await ctx.partials.get(owner, token)
  if (!state) throw noPartial(token)
  await exchange.ok({ offset: state.length, tamanho_arquivo: state.record.size, nome_arquivo: state.record.name })
}

function noPartial(token: string): DepositoError {
  return new DepositoError('NOT_FOUND', `no partial upload ${token} (expired, completed, or never begun): start from 0`)
}
