import { DepositoError } from '../protocol/errors.js'
import type { ServerContext } from './context.js'

/**
 * What a node says about itself (`node`, `hello`, `status`), and the one refusal a mirror gives writes. A mirror
 * holds copies for its primary; were it to take a client's write, the primary's repair pass would later push its
 * own version over it and the acknowledged write would be gone (as Redis replicas answer READONLY, a refusal that
 * names where to go beats a silent acceptance).
 */
export function nodeFields(ctx: ServerContext): Record<string, string | undefined> {
  const { identity } = ctx
  return {
    no: identity.id,
    papel: identity.role === 'primary' ? 'primario' : 'espelho',
    cluster: identity.clusterId,
    primario: identity.primary?.address,
    impressao: ctx.fingerprint,
  }
}

export function isMirror(ctx: ServerContext): boolean {
  return ctx.identity.role === 'mirror'
}

/** A mirror always knows its primary's address: `--join` gave it, and the primary's pings keep it current. */
export function notPrimary(ctx: ServerContext): DepositoError {
  const primary = ctx.identity.primary!.address
  return new DepositoError('NOT_PRIMARY', `this node is a mirror; writes go to the primary at ${primary}`, { details: { primary } })
}
