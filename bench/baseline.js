// The baseline's client side: the same file moved through a bare socket to and from bench/bare-sink.js.
// A fresh bare-sink process per measurement, so its peak RSS (VmHWM) belongs to that one transfer.
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { createReadStream, createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pipeline } from 'node:stream/promises'
import { measured, settleDisk, track } from './util.js'

const SINK = fileURLToPath(new URL('./bare-sink.js', import.meta.url))

async function startSink(dataDir, { tuned = false } = {}) {
  const child = track(spawn(process.execPath, [SINK, dataDir, ...(tuned ? ['--tuned'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] }))
  child.lastWords = []
  child.stderr.setEncoding('utf8').on('data', (s) => child.lastWords.push(...s.trimEnd().split('\n')))
  child.stdout.setEncoding('utf8')
  let line = ''
  const ports = await new Promise((resolve, reject) => {
    child.stdout.on('data', (s) => {
      line += s
      if (line.includes('\n')) resolve(JSON.parse(line))
    })
    child.exited.then(({ code, signal }) => reject(new Error(`bare-sink exited early (${signal ?? code}): ${child.lastWords.join(' ')}`)), reject)
  })
  return { child, ports }
}

function connected(port) {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  return once(socket, 'connect').then(() => socket)
}

/** Everything the peer sends until it closes, as text: the sink's one-line reply. */
async function readAll(socket) {
  let text = ''
  socket.setEncoding('utf8')
  for await (const s of socket) text += s
  return text
}

/** Runs `fn(ports, measuring)` against a fresh sink; see `measured` for what is added to its result. */
async function withSink(dataDir, fn, options) {
  const { child, ports } = await startSink(dataDir, options)
  return measured(child, 'bare-sink', (measuring) => fn(ports, measuring))
}

/**
 * File → socket → sink's fsynced file. Timed from connect to the sink's "ok" (sent after its fsync). The previous
 * run's file is removed first, untimed (truncating it would free its blocks inside the timed write; deposito's
 * side deletes its old copy likewise).
 */
export function bareDeposit(file, size, dataDir, { tuned = false } = {}) {
  return withSink(dataDir, async (ports, measuring) => {
    await rm(join(dataDir, 'blob'), { force: true })
    settleDisk()
    await measuring()
    const t0 = performance.now()
    const socket = await connected(ports.sink)
    const reply = readAll(socket)
    // Half-closes the socket once the file is through; the read side stays open for the reply.
    await pipeline(createReadStream(file), socket)
    const answer = await reply
    const seconds = (performance.now() - t0) / 1000
    if (answer !== `ok ${size}\n`) throw new Error(`bare-sink replied ${JSON.stringify(answer)}, expected "ok ${size}"`)
    return { seconds }
  }, { tuned })
}

/** Sink's file → socket → a local file (not fsynced: deposito's retrieve does not fsync either). */
export function bareRetrieve(out, dataDir) {
  return withSink(dataDir, async (ports, measuring) => {
    settleDisk()
    await measuring()
    const t0 = performance.now()
    const socket = await connected(ports.source)
    await pipeline(socket, createWriteStream(out, { flags: 'wx' }))
    return { seconds: (performance.now() - t0) / 1000 }
  })
}
