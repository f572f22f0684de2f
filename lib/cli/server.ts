import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { DEFAULT_PORT } from '../protocol/values.js'
import { toDepositoError } from '../protocol/errors.js'
import { DepositoServer, SERVER_DEFAULTS, type ServerOptions } from '../server/server.js'
import { loadSecret } from '../cluster/peer-auth.js'
import { startLocalCluster } from './local-cluster.js'
import { createLogger } from '../server/logger.js'
import { withAskedFlags } from './server-menu.js'
import { INTERRUPTED_EXIT } from './interrupt.js'
import { removeMirrorCommand, type RemoveMirrorFlags } from './remove-mirror.js'
import { readNodeFingerprint } from '../server/node-cert.js'

/** `bin/server`: flags in, a running node out; SIGINT/SIGTERM stop it gracefully, a second signal at once. */
function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value)
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`)
    return n
  }
}

export function buildProgram(): Command {
  const program = new Command('deposito-server')
    .description('Run a deposito node.')
    // Options after a subcommand's name are the subcommand's (remove-mirror has a --secret-file of its own).
    .enablePositionalOptions()
    .option('--host <host>', 'address to listen on (0.0.0.0 for every interface)', SERVER_DEFAULTS.host)
    .option('-p, --port <port>', 'TCP port', integer(0, 65535), DEFAULT_PORT)
    .option('-d, --data <dir>', 'where files are stored', SERVER_DEFAULTS.dataDir)
    .option('--default-replicas <n>', 'replicas for a deposit that does not ask', integer(0, 64), SERVER_DEFAULTS.defaultReplicas)
    .option('--max-header-bytes <n>', 'longest request line accepted', integer(256, 1 << 20), SERVER_DEFAULTS.maxHeaderBytes)
    .option('--header-timeout <seconds>', 'the whole request line must arrive within this of the accept', integer(1, 3600), SERVER_DEFAULTS.headerTimeoutMs / 1000)
    .option('--idle-timeout <seconds>', 'drop a connection silent this long', integer(1, 86_400), SERVER_DEFAULTS.idleTimeoutMs / 1000)
    .option('--max-connections <n>', 'client connections at once; when full, the oldest without a whole request line is dropped, else BUSY', integer(1, 1_000_000), SERVER_DEFAULTS.maxConnections)
    .option('--max-peer-connections <n>', 'connections from other nodes of the cluster, counted apart', integer(1, 100_000), SERVER_DEFAULTS.maxPeerConnections)
    .option('--hello-rate <n>', 'new client ids per source address per minute; more get BUSY', integer(1, 1_000_000), SERVER_DEFAULTS.helloRate)
    .option('--shutdown-grace <seconds>', 'how long in-flight requests may finish after SIGTERM', integer(0, 3600), SERVER_DEFAULTS.shutdownGraceMs / 1000)
    .option('--secret-file <file>', 'cluster secret shared by all nodes (or env DEPOSITO_SECRET); needed for --join')
    .option('--join <host:port>', 'register as a mirror of the primary at this address')
    .option('--advertise <host:port>', 'address the primary should dial to reach this mirror (default: --host:--port)')
    .option('--heartbeat-interval <seconds>', 'how often a primary checks its mirrors', integer(1, 3600), SERVER_DEFAULTS.heartbeatIntervalMs / 1000)
    .option('--repair-interval <seconds>', 'how often a primary runs its repair pass (scrub, reconcile, restore counts)', integer(1, 86_400), SERVER_DEFAULTS.repairIntervalMs / 1000)
    .option('--scrub-bytes <bytes>', 'bytes re-hashed per repair pass on each node, round-robin (0: no scrub)', integer(0, Number.MAX_SAFE_INTEGER), SERVER_DEFAULTS.scrubBytes)
    .option('--down-grace <seconds>', 'how long copies on a down mirror still count before they are made elsewhere', integer(0, 30 * 86_400), SERVER_DEFAULTS.downGraceMs / 1000)
    .option('--tls', 'accept only TLS, on any address (and reach peers over TLS even on loopback)')
    .option('--insecure-plaintext', 'also accept plaintext on a non-loopback address (ids and files then cross the network in clear)')
    .option('--partial-ttl <seconds>', 'remove a resumable deposit left unfinished this long after its last byte', integer(1, 365 * 86_400), SERVER_DEFAULTS.partialTtlMs / 1000)
    .option('--local-cluster <nodes>', 'run a primary here and nodes-1 mirrors on the next ports, under DATA/node-K', integer(1, 16))
    .addOption(new Option('--log-level <level>', 'log verbosity').choices(['debug', 'info', 'warn', 'error', 'silent']).default('info'))
    .showHelpAfterError('(run with --help for usage)')
  program
    .command('remove-mirror')
    .description("remove a dead mirror from its primary's cluster for good; its files are copied to other mirrors")
    .argument('<node>', 'the mirror, by node id or by address (as `status` shows it)')
    .requiredOption('--primary <host:port>', 'the primary of the cluster')
    .option('--secret-file <file>', 'cluster secret (or env DEPOSITO_SECRET)')
    .option('--tls', 'reach the primary over TLS even on loopback (needed when it runs with --tls)')
    .showHelpAfterError('(run with --help for usage)')
  program
    .command('fingerprint')
    .description("print this node's certificate fingerprint (what clients pin), without starting it")
    .option('-d, --data <dir>', "the node's data directory", SERVER_DEFAULTS.dataDir)
    .showHelpAfterError('(run with --help for usage)')
  return program
}

interface Flags {
  host: string
  port: number
  data: string
  defaultReplicas: number
  maxHeaderBytes: number
  headerTimeout: number
  idleTimeout: number
  maxConnections: number
  maxPeerConnections: number
  helloRate: number
  shutdownGrace: number
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent'
  secretFile?: string
  join?: string
  advertise?: string
  heartbeatInterval: number
  repairInterval: number
  scrubBytes: number
  downGrace: number
  partialTtl: number
  localCluster?: number
  tls?: boolean
  insecurePlaintext?: boolean
}

export async function main(given: string[] = process.argv): Promise<void> {
  // Bare `bin/server` at a terminal asks for its port (the seed's flow); anywhere else bare means the defaults.
  const argv = await withAskedFlags(given)
  if (!argv) {
    process.exitCode = INTERRUPTED_EXIT
    return
  }
  const program = buildProgram().exitOverride()
  let removal: { node: string; flags: RemoveMirrorFlags } | undefined
  let fingerprintOf: string | undefined
  // Running a node is the program's own action, which main carries out below; without one, commander would
  // answer a flags-only run with help now that there is a subcommand.
  program.action(() => {})
  program.commands.find((c) => c.name() === 'remove-mirror')!.exitOverride().action((node: string, sub: RemoveMirrorFlags) => {
    removal = { node, flags: sub }
  })
  program.commands.find((c) => c.name() === 'fingerprint')!.exitOverride().action((sub: { data: string }) => {
    fingerprintOf = sub.data
  })
  let flags: Flags
  try {
    flags = program.parse(argv).opts<Flags>()
  } catch (err) {
    process.exitCode = err instanceof CommanderError && err.exitCode === 0 ? 0 : 2
    return
  }
  if (removal) return removeMirror(removal.node, removal.flags)
  if (fingerprintOf !== undefined) return printFingerprint(fingerprintOf)
  const log = createLogger(flags.logLevel)
  let server: { close(): Promise<void> } | undefined
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now')
      process.exit(130)
    }
    stopping = true
    log.info({ signal }, 'stopping: finishing in-flight requests')
    // A signal during start-up is acted on once the start is through (below): there is nothing to close yet.
    if (server) void server.close().then(() => process.exit(0))
  }
  // Installed before the node listens, so a Ctrl-C right after its "listening" line is a graceful stop too.
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  try {
    const options: ServerOptions = {
      ...SERVER_DEFAULTS,
      host: flags.host,
      port: flags.port,
      dataDir: flags.data,
      defaultReplicas: flags.defaultReplicas,
      maxHeaderBytes: flags.maxHeaderBytes,
      headerTimeoutMs: flags.headerTimeout * 1000,
      idleTimeoutMs: flags.idleTimeout * 1000,
      maxConnections: flags.maxConnections,
      maxPeerConnections: flags.maxPeerConnections,
      helloRate: flags.helloRate,
      shutdownGraceMs: flags.shutdownGrace * 1000,
      heartbeatIntervalMs: flags.heartbeatInterval * 1000,
      repairIntervalMs: flags.repairInterval * 1000,
      scrubBytes: flags.scrubBytes,
      downGraceMs: flags.downGrace * 1000,
      partialTtlMs: flags.partialTtl * 1000,
      secret: await loadSecret(flags.secretFile),
      join: flags.join,
      advertise: flags.advertise,
      tls: flags.tls === true,
      insecurePlaintext: flags.insecurePlaintext === true,
      log,
    }
    if (flags.localCluster) {
      const cluster = await startLocalCluster(flags.localCluster, options, { logLevel: flags.logLevel, secretFile: flags.secretFile }, log)
      server = { close: () => cluster.stop() }
    } else {
      server = await DepositoServer.start(options)
    }
  } catch (err) {
    const e = toDepositoError(err)
    process.stderr.write(`deposito-server: ${e.code}: cannot start on ${flags.host}:${flags.port}: ${e.message}\n`)
    process.exitCode = e.exitCode
    return
  }
  if (stopping) void server.close().then(() => process.exit(0))
}

async function printFingerprint(dataDir: string): Promise<void> {
  try {
    process.stdout.write(`${await readNodeFingerprint(dataDir)}\n`)
  } catch (err) {
    const e = toDepositoError(err)
    process.stderr.write(`deposito-server: ${e.code}: ${e.message}\n`)
    process.exitCode = e.exitCode
  }
}

async function removeMirror(node: string, flags: RemoveMirrorFlags): Promise<void> {
  try {
    await removeMirrorCommand(node, flags)
  } catch (err) {
    const e = toDepositoError(err)
    process.stderr.write(`deposito-server: ${e.code}: cannot remove mirror ${node}: ${e.message}\n`)
    process.exitCode = e.exitCode
  }
}
