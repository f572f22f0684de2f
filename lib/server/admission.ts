import { DepositoError } from '../protocol/errors.js'

/**
 * Who gets a connection slot (PROTOCOL.md, Limits). Every connection is, in turn:
 * - pending: accepted, its request line not yet whole. Cheap to hold for an attacker (a few bytes and silence),
 *   so these are the first to go: a newcomer to a full server evicts the oldest pending connection, and is
 *   refused only when none is pending. An honest client sends its line at once, so it is never the oldest.
 * - a client: its line is in (or was refused), and a request is being served until it closes.
 * - a peer: known to be another node of the cluster (a verified peer header, or a PSK handshake). Peers have a
 *   budget of their own, so clients, however many, cannot keep replication and heartbeats out.
 * Pending and client connections share `maxConnections`; peers count only against `maxPeerConnections`.
 * Sets keep insertion order, so the oldest pending connection is the first in its set: every step is O(1).
 */
export interface AdmissionLimits {
  maxConnections: number
  maxPeerConnections: number
}

/** What admission needs of a connection: a way to turn it away with a reason. */
export interface Admitted {
  refuse(err: DepositoError): void
}

export class Admission {
  readonly #pending = new Set<Admitted>()
  readonly #clients = new Set<Admitted>()
  readonly #peers = new Set<Admitted>()

  constructor(readonly limits: AdmissionLimits) {}

  /**
   * Makes room for a newcomer, evicting the oldest pending connection (told BUSY) if the server is full.
   * Returns the refusal for the newcomer when there is no room to make.
   */
  makeRoom(): DepositoError | undefined {
    if (this.#pending.size + this.#clients.size < this.limits.maxConnections) return undefined
    const oldest = this.#pending.values().next()
    const busy = new DepositoError('BUSY', `the server is at its limit of ${this.limits.maxConnections} connections; try again shortly`)
    if (oldest.done) return busy
    this.#pending.delete(oldest.value)
    oldest.value.refuse(busy)
    return undefined
  }

  /** A connection just accepted (room was made for it). */
  add(conn: Admitted): void {
    this.#pending.add(conn)
  }

  /** Its request line arrived, or never will (refused, cut): it can no longer be evicted for being slow. */
  headerDone(conn: Admitted): void {
    if (this.#pending.delete(conn)) this.#clients.add(conn)
  }

  /** Moves a connection to the peers' budget; BUSY if that budget is spent (the connection keeps its slot). */
  markPeer(conn: Admitted): void {
    // One already gone (closed, evicted) is not brought back: nothing would remove it again.
    if (!this.#pending.has(conn) && !this.#clients.has(conn)) return
    if (this.#peers.size >= this.limits.maxPeerConnections) {
      throw new DepositoError('BUSY', `the server is at its limit of ${this.limits.maxPeerConnections} peer connections; try again shortly`)
    }
    this.#pending.delete(conn)
    this.#clients.delete(conn)
    this.#peers.add(conn)
  }

  remove(conn: Admitted): void {
    this.#pending.delete(conn)
    this.#clients.delete(conn)
    this.#peers.delete(conn)
  }

  /** Counts, for status and tests. */
  get counts(): { pending: number; clients: number; peers: number } {
    return { pending: this.#pending.size, clients: this.#clients.size, peers: this.#peers.size }
  }
}
