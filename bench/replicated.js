// The replicated deposit: `bin/client deposit FILE --replicas 2` on a local three-node cluster (a primary and two
// mirrors that --join it, sharing a secret), against a baseline that lands the same three fsynced copies through
// bare sockets, with no protocol and no hashing.
//
// Baseline shape: the bench streams the file once to a bare-sink (the "primary"), which writes it and tees the
// same bytes to two more bare-sinks (the "mirrors"). That is deposito's shape: the client sends one copy, and the
// primary carries the fan-out (one stream in, two out, plus its own disk write), each mirror sees one stream in,
// the slowest of the four destinations paces the whole by backpressure, and the answer comes only once all three
// copies are durable. Teeing from the bench itself to three independent sinks would move the fan-out into the
// client and let the "primary" do a third of the work it does in deposito.
//
// Every measurement gets fresh processes, so each node's peak RSS (VmHWM, read just before it is stopped) belongs
// to that one transfer. deposito's nodes get fresh data dirs as well: the primary remembers its mirrors' addresses
// (DATA/cluster.json) and each restart on --port 0 gives them new ones, so reused dirs would pile up dead mirrors;
// removing the previous run's dirs (untimed, then sync) is how the previous copies are deleted. The baseline's
// sinks keep their dirs and drop their previous blob, untimed, as bench/baseline.js does.
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { createReadStream } from 'node:fs'
import { once } from 'node:events'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pipeline } from 'node:stream/promises'
import { peakRss, settleDisk, startServer, stop, tail, timedRun, track } from './util.js'

const CLIENT = fileURLToPath(new URL('../bin/client', import.meta.url))
const SINK = fileURLToPath(new URL('./bare-sink.js', import.meta.url))
export const NODES = ['primary', 'mirror 1', 'mirror 2']

/**
 * Starts processes with `start()`, runs `fn(nodes)`, then reads every node's peak RSS and stops them all
 * (gracefully; anything but exit 0 is an error). If anything fails, every node is killed and that error is the one
 * thrown. Returns fn's result with `rss`, one figure per node, in NODES order.
 */
async function withNodes(start, what, fn) {
  const nodes = []
  let result
  try {
    await start(nodes)
    result = await fn(nodes)
    result = { ...result, rss: await Promise.all(nodes.map((n) => peakRss(n.pid))) }
  } catch (err) {
    for (const n of nodes) n.kill('SIGKILL')
    await Promise.allSettled(nodes.map((n) => n.exited))
    throw err
  }
  const stopped = await Promise.allSettled(nodes.map((n, i) => stop(n, `${what} ${NODES[i]}`)))
  const failed = stopped.find((s) => s.status === 'rejected')
  if (failed) throw failed.reason
  return result
}

// ---- deposito ----


/** Until `child` has logged `msg` `count` times; rejects if it exits first or `ms` pass. */
function logged(child, msg, count, ms) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if ((child.messages.get(msg) ?? 0) >= count) done(resolve)
    }
    const timer = setTimeout(() => done(reject, new Error(`no ${count}× "${msg}" from the primary within ${ms / 1000} s${tail(child)}`)), ms)
    const done = (fn, arg) => {
      clearTimeout(timer)
      child.waiters = child.waiters.filter((w) => w !== check)
      fn(arg)
    }
    child.waiters.push(check)
    child.exited.then(({ code, signal }) => done(reject, new Error(`deposito server exited early (${signal ?? code})${tail(child)}`)), () => {})
    check()
  })
}

function client(server, home, id, args, tls = false) {
  const global = ['--server', server, ...(id ? ['--id', id] : []), ...(tls ? ['--tls'] : [])]
  return timedRun(process.execPath, [CLIENT, ...global, ...args], { env: { ...process.env, DEPOSITO_HOME: home } })
}

/**
 * Wall time of `bin/client deposit FILE --replicas 2 --no-progress` against a fresh three-node cluster, spawn to
 * exit 0 (exit 0 means three copies: a deposit short of copies exits with DEGRADED). Untimed before it: the
 * previous run's node dirs are removed, the cluster started, both mirrors joined, a client id issued, disk synced.
 *
 * With `tls`, every link is TLS: the nodes run with --tls (so the primary reaches its mirrors over TLS-PSK even on
 * loopback) and the client with --tls. Each run's nodes have new certificates on ports that may repeat, so the
 * client pins them in a home of the run's own (the one asking for the id, untimed, pins the primary).
 */
export async function depositoReplicated(file, name, root, secretFile, home, { tls = false } = {}) {
  if (tls) home = join(root, 'home')
  const dirs = NODES.map((_, i) => join(root, `node-${i + 1}`))
  await rm(root, { recursive: true, force: true })
  for (const d of dirs) await mkdir(d, { recursive: true })
  let primaryAddress
  return withNodes(
    async (nodes) => {
      const secret = ['--secret-file', secretFile, ...(tls ? ['--tls'] : [])]
      const primary = await startServer([...secret, '--data', dirs[0]])
      nodes.push(primary)
      primaryAddress = `127.0.0.1:${await primary.port}`
      for (const d of dirs.slice(1)) nodes.push(await startServer([...secret, '--data', d, '--join', primaryAddress]))
      await Promise.all(nodes.slice(1).map((m) => m.port))
      await logged(primary, 'mirror joined', 2, 30_000)
    },
    'deposito',
    async (nodes) => {
      const { stdout } = await client(primaryAddress, home, undefined, ['id', '--json'], tls)
      const { id } = JSON.parse(stdout)
      settleDisk()
      const { seconds, stdout: said } = await client(primaryAddress, home, id, ['deposit', file, '--name', name, '--replicas', '2', '--no-progress'], tls)
      if (!/\b3 copies\b/.test(said)) throw new Error(`deposit did not report 3 copies: ${said.trim()}`)
      for (const [i, m] of nodes.slice(1).entries()) {
        if (!m.messages.get('replica stored')) throw new Error(`${NODES[i + 1]} logged no "replica stored"${tail(m)}`)
      }
      return { seconds }
    },
  )
}

// ---- baseline ----

async function startSink(dataDir, downstreamPorts = []) {
  const child = track(spawn(process.execPath, [SINK, dataDir, ...downstreamPorts.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] }))
  child.lastWords = []
  child.stderr.setEncoding('utf8').on('data', (s) => child.lastWords.push(...s.trimEnd().split('\n')))
  child.stdout.setEncoding('utf8')
  let line = ''
  child.ports = await new Promise((resolve, reject) => {
    child.stdout.on('data', (s) => {
      line += s
      if (line.includes('\n')) resolve(JSON.parse(line))
    })
    child.exited.then(({ code, signal }) => reject(new Error(`bare-sink exited early (${signal ?? code}): ${child.lastWords.join(' ')}`)), reject)
  })
  return child
}

/**
 * File → socket → "primary" sink, which fsyncs its copy and tees the bytes to the two "mirror" sinks, which fsync
 * theirs. Timed from connect to the primary's "ok", which it sends only once all three copies are durable. Each
 * sink's previous blob is removed first, untimed.
 */
export async function bareReplicated(file, size, dirs) {
  for (const d of dirs) await mkdir(d, { recursive: true })
  let entry
  return withNodes(
    async (nodes) => {
      // Mirrors first (the primary needs their ports), but the nodes list stays in NODES order.
      const mirrors = []
      for (const d of dirs.slice(1)) mirrors.push(await startSink(d))
      const primary = await startSink(dirs[0], mirrors.map((m) => m.ports.sink))
      nodes.push(primary, ...mirrors)
      entry = primary.ports.sink
    },
    'bare-sink',
    async () => {
      for (const d of dirs) await rm(join(d, 'blob'), { force: true })
      settleDisk()
      const t0 = performance.now()
      const socket = connect({ host: '127.0.0.1', port: entry, allowHalfOpen: true })
      await once(socket, 'connect')
      let answer = ''
      socket.setEncoding('utf8')
      const reply = (async () => {
        for await (const s of socket) answer += s
      })()
      await pipeline(createReadStream(file), socket)
      await reply
      const seconds = (performance.now() - t0) / 1000
      if (answer !== `ok ${size}\n`) throw new Error(`bare-sink replied ${JSON.stringify(answer)}, expected "ok ${size}"`)
      return { seconds }
    },
  )
}
