import { DepositoError } from '../protocol/errors.js'
import type { Membership } from '../cluster/membership.js'
import type { NodeIdentity } from '../cluster/node-identity.js'
import type { FileInfo } from '../protocol/replies.js'
import type { PeerAuth } from '../cluster/peer-auth.js'
import type { PeerClient } from '../cluster/peer-client.js'
import type { BlobStore } from '../store/blob-store.js'
import type { PartialUploads } from '../store/partial-uploads.js'
import type { ReplicaDeps } from '../cluster/replica-count.js'
import type { Scrubber } from '../cluster/scrub.js'
import type { Tombstones } from '../cluster/tombstones.js'
import type { RateLimiter } from './rate-limit.js'

/** What a node that is part of a cluster (it has a secret) can do beyond storing files. */
export interface ClusterContext {
  auth: PeerAuth
  peers: PeerClient
  /** The same, with short timeouts: heartbeats and the check of a joining node must not wait long. */
  pinger: PeerClient
  /** The mirrors of this node, when it acts as a primary. */
  membership: Membership
  /** Copies to remove from mirrors that could not be reached when they became stale. */
  tombstones: Tombstones
  /** Re-hashes this node's copies a slice at a time (its own repair pass, or its primary, asks). */
  scrubber: Scrubber
  /** A mirror that stops taking bytes for this long is cut off; the deposit goes on without it. */
  replicaStallMs: number
  /** How long a mirror may take to verify and commit its copy once the body is through. */
  replicaAckMs: number
}

/** What request handlers need from the node that runs them. */
export interface ServerContext {
  store: BlobStore
  /** Resumable deposits kept between connections (the primary's; a mirror keeps none). */
  partials: PartialUploads
  /** This node's id and role (every node has one, with or without a secret). */
  identity: NodeIdentity
  /** This node's certificate fingerprint (`sha256:<hex>`), shown by `node` and `status` as `impressao`. */
  fingerprint?: string
  /** qtd_replicas for a deposit that does not say. */
  defaultReplicas: number
  cluster?: ClusterContext
  /** True once the node is stopping: long work (a mirror's scrub) ends early. */
  stopped: () => boolean
  /** Spends one of a source address's new ids (`hello` without one). */
  helloLimit: RateLimiter
}

export function liveMirrors(ctx: ServerContext): string[] {
  return ctx.cluster?.membership.live() ?? []
}

/**
 * A record as a client sees it: records name mirrors by node id, clients dial addresses, so `espelhos` carries
 * each mirror's address as membership knows it now.
 */
export function shownToClient(ctx: ServerContext, info: FileInfo): FileInfo {
  const membership = ctx.cluster?.membership
  if (!membership || info.mirrors === undefined) return info
  return { ...info, mirrors: info.mirrors.map((id) => membership.addressOf(id)) }
}

/** Every mirror the cluster has, up or down. */
export function knownMirrors(ctx: ServerContext): string[] {
  return ctx.cluster?.membership.all().map((m) => m.id) ?? []
}

/**
 * A count the cluster can never reach (more mirrors than it has, live or not) is refused. One above the live
 * mirrors but within the known ones is not: the file is stored on the live ones, answered degraded, and the
 * repair pass completes it when the others are back (as HDFS does), so a mirror being down never refuses a write.
 */
export function refuseUnreachableCount(ctx: ServerContext, replicas: number): void {
  const known = knownMirrors(ctx).length
  if (replicas > known) throw new DepositoError('NO_REPLICAS', `asked for ${replicas} replicas but this cluster has ${known} mirrors`)
}

/** What settleReplicas needs, from a node that has a cluster. */
export function replicaDeps(ctx: ServerContext, exchange: { log: import('pino').Logger }): ReplicaDeps {
  const cluster = ctx.cluster!
  return { store: ctx.store, peers: cluster.peers, membership: cluster.membership, tombstones: cluster.tombstones, log: exchange.log }
}
