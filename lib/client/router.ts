import { DepositoError } from '../protocol/errors.js'
import type { Fields } from '../protocol/fields.js'
import { formatAddress, parseAddress, type ServerAddress } from '../net/address.js'
import { askWithin, type ConnectOptions } from '../net/connection.js'

/**
 * Which node of `--server` a request goes to. Every command starts by asking the listed nodes, in order, who
 * they are (`op:node`), each within the response timeout; the first that answers says whether it is the primary
 * or a mirror, which cluster it belongs to and, for a mirror, where its primary is.
 *
 * Invariants: reads go to the primary when it answers and to a mirror only when it does not; writes go to the
 * primary only, and the client follows a mirror's pointer to it at most once; every wait here is bounded by the
 * response timeout, so a frozen node costs one timeout, never a hang.
 */
export type Role = 'primary' | 'mirror'

export interface NodeAnswer {
  /** Where we reached it. */
  target: ServerAddress
  address: string
  /** Its node id; unknown for servers older than node ids. */
  node?: string
  role: Role
  /** The primary's node id: the same from every node of one cluster, whatever address reached it. */
  cluster?: string
  /** A mirror's primary, as the mirror knows its address. */
  primary?: string
}

/** The first node that answered, and the listed addresses that did not (by their text, as dialled). */
export interface FirstAnswer {
  answer: NodeAnswer
  silent: Set<string>
}

/** The node a read went to; `missedPrimary` when a mirror served it because its primary did not answer. */
export interface ReadRoute {
  node: NodeAnswer
  missedPrimary?: string
}

// Refusals that say "not now" rather than "I am not a deposito node that knows op:node": move on to the next node.
const PASSING = new Set(['UNREACHABLE', 'TIMEOUT', 'CONNECTION_LOST', 'PROTOCOL_ERROR', 'SHUTTING_DOWN', 'BUSY'])
// Refusals about how we connect, not about the node: said at once, never hidden behind another node or an
// "old server" guess (a changed certificate may be someone in the middle).
const TRANSPORT = new Set(['UNTRUSTED', 'TLS_REQUIRED'])

export class Router {
  readonly #addresses: ServerAddress[]
  readonly #timeoutMs: number
  readonly #connect: ConnectOptions

  constructor(addresses: ServerAddress[], responseTimeoutMs: number, connect: ConnectOptions = {}) {
    if (addresses.length === 0) throw new DepositoError('USAGE', 'no server address given')
    this.#addresses = addresses
    this.#timeoutMs = responseTimeoutMs
    this.#connect = connect
  }

  /** Asks one node who it is. Any other error reply comes from a server older than `op:node`: a primary, as it was. */
  async probe(target: ServerAddress): Promise<NodeAnswer> {
    const address = formatAddress(target)
    let fields: Fields
    try {
      fields = await askWithin(target, { op: 'node' }, this.#timeoutMs, this.#connect)
    } catch (err) {
      if (!(err instanceof DepositoError) || PASSING.has(err.code) || TRANSPORT.has(err.code)) throw err
      return { target, address, role: 'primary' }
    }
    return {
      target,
      address,
      role: fields.papel === 'espelho' ? 'mirror' : 'primary',
      ...(fields.no === undefined ? {} : { node: fields.no }),
      ...(fields.cluster === undefined ? {} : { cluster: fields.cluster }),
      ...(fields.primario === undefined ? {} : { primary: fields.primario }),
    }
  }

  /** The first listed node that answers in time; if none does, why (each node's reason when there are several). */
  async first(): Promise<FirstAnswer> {
    const silent = new Set<string>()
    const failures: DepositoError[] = []
    for (const target of this.#addresses) {
      try {
        return { answer: await this.probe(target), silent }
      } catch (err) {
        if (!(err instanceof DepositoError) || !PASSING.has(err.code)) throw err
        silent.add(formatAddress(target))
        failures.push(err)
      }
    }
    if (failures.length === 1) throw failures[0]!
    const code = failures.every((f) => f.code === failures[0]!.code) ? failures[0]!.code : 'UNREACHABLE'
    throw new DepositoError(code, `no node answered: ${failures.map((f) => f.message).join('; ')}`)
  }

  /** A mirror answered first: read from its primary if that answers, else from the mirror. */
  async forRead({ answer, silent }: FirstAnswer): Promise<ReadRoute> {
    if (answer.role === 'primary') return { node: answer }
    const primary = answer.primary
    if (primary !== undefined && !silent.has(primary)) {
      const reached = await this.#reach(primary)
      if (reached) return { node: reached }
    }
    return { node: answer, missedPrimary: primary ?? '' }
  }

  /** The primary, for a write; `what` names the write in the error when it cannot be reached. */
  async forWrite({ answer, silent }: FirstAnswer, what = 'writes'): Promise<NodeAnswer> {
    if (answer.role === 'primary') return answer
    return this.follow(answer.address, answer.primary, what, silent)
  }

  /**
   * The primary a mirror at `mirror` pointed to, probed first so that a frozen one fails within the timeout.
   * Followed once: a node named as the primary that calls itself a mirror is NOT_PRIMARY, not another hop.
   */
  async follow(mirror: string, primary: string | undefined, what: string, silent = new Set<string>()): Promise<NodeAnswer> {
    if (primary === undefined) {
      throw new DepositoError('NOT_PRIMARY', `${mirror} is a mirror and does not know its primary's address; ${what} go to the primary`)
    }
    const reached = silent.has(primary) ? undefined : await this.#reach(primary)
    if (!reached) {
      throw new DepositoError('UNREACHABLE', `${what} go to the primary at ${primary}, which does not answer; mirror ${mirror} takes no writes`)
    }
    if (reached.role !== 'primary') {
      throw new DepositoError('NOT_PRIMARY', `${mirror} names ${primary} as its primary, but ${primary} answers as a mirror`, { details: { primary: reached.primary } })
    }
    return reached
  }

  /** The node at an address a server sent us, or undefined if it does not answer (or the address is unreadable). */
  async #reach(text: string): Promise<NodeAnswer | undefined> {
    try {
      return await this.probe(parseAddress(text))
    } catch (err) {
      if (err instanceof DepositoError && TRANSPORT.has(err.code)) throw err
      return undefined
    }
  }
}
