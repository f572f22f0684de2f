import { once } from 'node:events'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { Logger } from 'pino'
import { DepositoError } from '../protocol/errors.js'
import { DEFAULT_PORT } from '../protocol/values.js'
import { BlobStore } from '../store/blob-store.js'
import { PartialUploads } from '../store/partial-uploads.js'
import { Admission, type AdmissionLimits } from './admission.js'
import { Exchange, type ConnectionLimits } from './connection.js'
import { RateLimiter } from './rate-limit.js'
import type { ClusterContext, ServerContext } from './context.js'
import { advertisedAddress, startHeartbeats } from '../cluster/heartbeat.js'
import { joinPrimary } from '../cluster/join.js'
import { NodeIdentity } from '../cluster/node-identity.js'
import { startRepair } from '../cluster/repair.js'
import { Membership, type MirrorStatus } from '../cluster/membership.js'
import { PeerAuth } from '../cluster/peer-auth.js'
import { PeerClient } from '../cluster/peer-client.js'
import { Scrubber } from '../cluster/scrub.js'
import { Tombstones } from '../cluster/tombstones.js'
import { handleRequest } from './handlers.js'
import { isPskPeer, Listener, refuseConnection } from './listener.js'
import { openNodeCertificate, type NodeCertificate } from './node-cert.js'
import { isLoopback, peerTransport } from '../net/tls.js'
import { createLogger } from './logger.js'

/**
 * A deposito node: a TCP listener, its store, and the bookkeeping for limits and a graceful stop.
 * Stopping closes the listener, cuts idle connections, gives in-flight requests `shutdownGraceMs` to finish,
 * then cuts the rest (their pipelines fail and their temp files go, so nothing is left half-written).
 */
export interface ServerOptions extends ConnectionLimits, AdmissionLimits {
  host: string
  port: number
  dataDir: string
  defaultReplicas: number
  /** New client ids (`hello` without one) per source address per minute. */
  helloRate: number
  shutdownGraceMs: number
  log: Logger
  /** The cluster secret; without it the node stands alone and refuses peer requests. */
  secret?: Buffer
  /** A primary to register with as its mirror (HOST:PORT). */
  join?: string
  /** The address peers should dial to reach this node (default: host:port as listening). */
  advertise?: string
  heartbeatIntervalMs: number
  /** How often a primary runs its repair pass (repair.ts). */
  repairIntervalMs: number
  /** Bytes of copies re-hashed per repair pass, on the primary and on each mirror; 0: no scrubbing. */
  scrubBytes: number
  /** How long a copy on a mirror that is down still counts before it is re-replicated elsewhere. */
  downGraceMs: number
  replicaStallMs: number
  replicaAckMs: number
  /** `--tls`: TLS only, on any address (and peers dialled over TLS-PSK even on loopback). */
  tls: boolean
  /** `--insecure-plaintext`: plaintext served beside TLS on any address (warned about at start). */
  insecurePlaintext: boolean
  /** How long a connection may take to send its first byte and finish its TLS handshake. */
  handshakeTimeoutMs: number
  /** Connections held before their handshake is through; beyond it the oldest is dropped (listener.ts). */
  maxPending: number
  /** A partial upload (resumable deposit) whose last byte is older than this is removed. */
  partialTtlMs: number
}

export const SERVER_DEFAULTS: Omit<ServerOptions, 'log'> = {
  host: '127.0.0.1',
  port: DEFAULT_PORT,
  dataDir: './data',
  defaultReplicas: 0,
  maxHeaderBytes: 8192,
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  lingerMs: 2_000,
  // Sized for thousands of idle sockets: what keeps slow clients from locking others out is the header deadline
  // and the eviction of pending connections (admission.ts), not a small limit.
  maxConnections: 4096,
  maxPeerConnections: 256,
  helloRate: 30,
  shutdownGraceMs: 10_000,
  heartbeatIntervalMs: 2_000,
  repairIntervalMs: 60_000,
  scrubBytes: 1024 ** 3,
  downGraceMs: 600_000,
  replicaStallMs: 10_000,
  replicaAckMs: 30_000,
  tls: false,
  insecurePlaintext: false,
  handshakeTimeoutMs: 10_000,
  maxPending: 4096,
  partialTtlMs: 86_400_000,
}

export class DepositoServer {
  readonly #server: Server
  readonly #listener: Listener
  readonly #exchanges = new Set<Exchange>()
  readonly #admission: Admission
  /** Requests still running, cleanup included: close() waits for them so no temp file outlives the server. */
  readonly #serving = new Set<Promise<void>>()
  readonly #options: ServerOptions
  readonly #context: ServerContext
  #closing: Promise<void> | undefined
  readonly #stopping = new AbortController()
  #stopBackground: () => Promise<void> = async () => {}

  private constructor(options: ServerOptions, store: BlobStore, partials: PartialUploads, identity: NodeIdentity, cluster: ClusterContext | undefined, certificate: NodeCertificate) {
    this.#options = options
    this.#admission = new Admission(options)
    this.#context = {
      store,
      partials,
      identity,
      fingerprint: certificate.fingerprint,
      defaultReplicas: options.defaultReplicas,
      cluster,
      stopped: () => this.#stopping.signal.aborted,
      helloLimit: new RateLimiter({ perMinute: options.helloRate }),
    }
    // Half-open: the client ends its side to mark the end of its request, and still reads the reply.
    // Sockets reach #accept once the listener has told TLS from plaintext and finished any handshake.
    const { secret, handshakeTimeoutMs, idleTimeoutMs, maxPending, lingerMs, log } = options
    const transport = { certificate, secret, plaintext: plaintextAllowed(options), handshakeTimeoutMs, idleTimeoutMs, maxPending, lingerMs, log }
    this.#listener = new Listener(transport, (socket) => this.#accept(socket))
    this.#server = createServer({ allowHalfOpen: true }, (socket) => this.#listener.handle(socket))
  }

  static async start(partial: Partial<ServerOptions> = {}): Promise<DepositoServer> {
    const options: ServerOptions = { ...SERVER_DEFAULTS, log: createLogger('silent'), ...partial }
    if (options.tls && options.insecurePlaintext) throw new DepositoError('USAGE', '--tls and --insecure-plaintext contradict each other: choose one')
    if (options.join && !options.secret) throw new DepositoError('USAGE', '--join needs the cluster secret (--secret-file or DEPOSITO_SECRET)')
    const store = await BlobStore.open(options.dataDir, options.log)
    let identity: NodeIdentity
    let cluster: ClusterContext | undefined
    let certificate: NodeCertificate
    let partials: PartialUploads | undefined
    try {
      partials = await PartialUploads.open(store.layout, { ttlMs: options.partialTtlMs, log: options.log })
      identity = await NodeIdentity.open(options.dataDir)
      certificate = await openNodeCertificate(options.dataDir, identity.id)
      // Before listening: a node told to join refuses writes from its first second.
      if (options.join) await identity.becomeMirrorOf(options.join, store.clientCount())
      if (identity.role === 'mirror' && !options.secret) {
        throw new DepositoError('USAGE', `this data dir is a mirror's (of ${identity.primary!.address}); it needs the cluster secret (--secret-file or DEPOSITO_SECRET)`)
      }
      cluster = options.secret && (await openCluster(options, store))
    } catch (err) {
      await partials?.close()
      await store.close()
      throw err
    }
    const server = new DepositoServer(options, store, partials, identity, cluster, certificate)
    server.#server.listen(options.port, options.host)
    await once(server.#server, 'listening')
    const plaintext = plaintextAllowed(options)
    const { fingerprint } = certificate
    if (options.insecurePlaintext) options.log.warn('--insecure-plaintext: clients and peers may connect without TLS; client ids, files and peer requests can then be read on the network')
    options.log.info({ address: server.address, data: options.dataDir, node: identity.id, role: identity.role, fingerprint, plaintext }, 'listening')
    if (cluster) {
      const advertised = (socket: Socket) => advertisedAddress(options.host, server.address.port, options.advertise, socket.localAddress)
      const stopBeats = startHeartbeats(cluster.membership, cluster.pinger, { id: identity.id, address: advertised }, options.heartbeatIntervalMs, options.log)
      const { peers, membership, tombstones, scrubber } = cluster
      const stopRepair = startRepair(
        { store, peers, membership, tombstones, scrubber, log: options.log },
        { intervalMs: options.repairIntervalMs, scrubBytes: options.scrubBytes, downGraceMs: options.downGraceMs },
      )
      server.#stopBackground = () => {
        stopBeats()
        return stopRepair()
      }
      // A mirror (re)joins its recorded primary at every start, --join or not.
      if (identity.role === 'mirror') void joinPrimary(cluster.peers, identity, advertised, options.log, server.#stopping.signal)
    }
    return server
  }

  get address(): AddressInfo {
    return this.#server.address() as AddressInfo
  }

  get store(): BlobStore {
    return this.#context.store
  }

  /** This node's id and role (DATA/node.json). */
  get identity(): NodeIdentity {
    return this.#context.identity
  }

  /** This node's mirrors and what the last heartbeat said of each (empty on a node outside any cluster). */
  mirrors(): MirrorStatus[] {
    return this.#context.cluster?.membership.all() ?? []
  }

  /** Connections by kind (admission.ts): pending a request line, clients, peers. */
  get connections(): { pending: number; clients: number; peers: number } {
    return this.#admission.counts
  }

  #accept(socket: Socket): void {
    const log = this.#options.log.child({ peer: `${socket.remoteAddress}:${socket.remotePort}` })
    // A PSK peer proved the cluster secret in its handshake: it takes a slot of the peers' budget, never a client's.
    const peer = isPskPeer(socket)
    const refusal = this.#closing ? new DepositoError('SHUTTING_DOWN', 'the server is stopping') : peer ? undefined : this.#admission.makeRoom()
    if (refusal) {
      log.warn({ code: refusal.code }, refusal.message)
      refuseConnection(socket, refusal, this.#options.lingerMs)
      return
    }
    const exchange = new Exchange(socket, log, this.#options, this.#admission)
    if (peer) {
      try {
        exchange.markPeer()
      } catch (err) {
        exchange.refuse(err as DepositoError)
        return
      }
    }
    this.#exchanges.add(exchange)
    socket.once('close', () => this.#exchanges.delete(exchange))
    const serving = exchange.serve((request, ex) => handleRequest(request, ex, this.#context))
    this.#serving.add(serving)
    void serving.finally(() => this.#serving.delete(serving))
  }

  /** Stops the node; resolves once every connection is gone. Calling it again returns the same promise. */
  close(graceMs = this.#options.shutdownGraceMs): Promise<void> {
    this.#closing ??= this.#close(graceMs)
    return this.#closing
  }

  async #close(graceMs: number): Promise<void> {
    this.#stopping.abort()
    this.#listener.close()
    const background = this.#stopBackground()
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    // Connections with no request under way are told why they are being closed.
    for (const ex of this.#exchanges) if (!ex.busy) ex.refuse(new DepositoError('SHUTTING_DOWN', 'the server is stopping'))
    let graceOver!: () => void
    const grace = new Promise<void>((resolve) => (graceOver = resolve))
    const deadline = setTimeout(() => {
      for (const ex of this.#exchanges) ex.socket.destroy()
      graceOver()
    }, graceMs)
    await closed
    await Promise.allSettled(this.#serving)
    // A repair pass stops between files; one copying a large file may take longer than the grace allows.
    await Promise.race([background, grace])
    clearTimeout(deadline)
    await this.#context.partials.close()
    await this.store.close()
    this.#options.log.info('stopped')
  }
}

/** Plaintext where no byte leaves the machine (unless --tls), or anywhere the operator insists. */
function plaintextAllowed(options: ServerOptions): boolean {
  return options.insecurePlaintext || (!options.tls && isLoopback(options.host))
}

async function openCluster(options: ServerOptions, store: BlobStore): Promise<ClusterContext> {
  const auth = new PeerAuth(options.secret!)
  const membership = await Membership.open(options.dataDir, options.log)
  // Peers are named by node id and dialled wherever membership says they are at the moment of the call.
  const transport = peerTransport(options.secret!, options.tls)
  const peers = new PeerClient(auth, { connectTimeoutMs: 2_000, idleTimeoutMs: options.replicaAckMs, resolve: (node) => membership.resolve(node), transport })
  // Pings get their own short timeout: a frozen mirror must be marked down in a few beats, not after the long
  // timeout that replica transfers need.
  const pingTimeoutMs = Math.max(500, options.heartbeatIntervalMs)
  return {
    auth,
    peers,
    pinger: peers.with({ connectTimeoutMs: pingTimeoutMs, idleTimeoutMs: pingTimeoutMs }),
    membership,
    tombstones: await Tombstones.open(options.dataDir),
    scrubber: new Scrubber(store),
    replicaStallMs: options.replicaStallMs,
    replicaAckMs: options.replicaAckMs,
  }
}
