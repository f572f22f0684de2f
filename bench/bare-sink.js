// The baseline server: the least any TCP file depot must do, with none of deposito's framing, hashing, logging or
// metadata. Run as its own process (like deposito's server) so the parent/child CPU split is the same on both
// sides and its peak RSS can be read from /proc.
//
//   node bench/bare-sink.js DIR [--tuned] [PORT...]
//                                  → prints {"sink":PORT,"source":PORT} on stdout, then serves until SIGTERM.
//
// --tuned writes the file the way deposito's store does (1 MiB of room for batched writes, an fdatasync started
// every 16 MiB alongside them), so the bench can also show what deposito costs over the same disk strategy.
//
// With PORTs (the replicated baseline), the sink port also tees every byte it receives to the sink port of each of
// those other bare-sinks, as deposito's primary fans a deposit out to its mirrors, and says "ok" only once its own
// copy is fsynced and every downstream sink has said "ok" for the same byte count.
//
// sink port:   every byte until the peer's half-close goes to DIR/blob (fsynced before close, as deposito's
//              store does), then one line "ok BYTES\n" and close.
// source port: DIR/blob is streamed to the peer, then close.
// Two ports rather than a request line, so there is not even a header to parse.
import { connect, createServer } from 'node:net'
import { createReadStream, createWriteStream, fdatasync } from 'node:fs'
import { join } from 'node:path'
import { pipeline } from 'node:stream'
import { once } from 'node:events'

const dir = process.argv[2]
const tuned = process.argv[3] === '--tuned'
const downstream = process.argv.slice(tuned ? 4 : 3).map(Number)
if (!dir || downstream.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
  process.stderr.write('usage: node bench/bare-sink.js DIR [--tuned] [DOWNSTREAM_SINK_PORT...]\n')
  process.exit(2)
}
const blob = join(dir, 'blob')

// allowHalfOpen: the peer ends its side to say "that was all", and still has to read our reply.
const sink = createServer({ allowHalfOpen: true }, (socket) => {
  const out = createWriteStream(blob, { flush: true, ...(tuned ? { highWaterMark: 2 ** 20 } : {}) })
  if (tuned) flushEarly(socket, out)
  // Downstream sinks: piped from the same socket, so the slowest of file and peers paces the sender (pipe to
  // several destinations pauses the source until all of them have drained). Each answers with its own "ok".
  const replies = downstream.map((port) => {
    const peer = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    socket.pipe(peer)
    return new Promise((resolve, reject) => {
      let text = ''
      peer.setEncoding('utf8')
      peer.on('data', (s) => (text += s))
      peer.on('end', () => resolve(text))
      peer.on('error', reject)
    })
  })
  socket.pipe(out)
  socket.on('error', (err) => out.destroy(err))
  out.on('error', (err) => {
    process.stderr.write(`bare-sink: write failed: ${err.message}\n`)
    socket.destroy()
  })
  // 'close' comes after the fsync and close of the file: only then are the bytes as safe as deposito's.
  out.on('close', () => {
    if (out.errored) return
    const mine = `ok ${out.bytesWritten}\n`
    Promise.all(replies).then(
      (theirs) => {
        const bad = theirs.find((t) => t !== mine)
        socket.end(bad === undefined ? mine : `downstream replied ${JSON.stringify(bad)}\n`)
      },
      (err) => {
        process.stderr.write(`bare-sink: downstream failed: ${err.message}\n`)
        socket.end(`downstream failed: ${err.message}\n`)
      },
    )
  })
})

/** An fdatasync every 16 MiB written, one at a time, not awaited by the writes (as lib/store/file-sink.ts). */
function flushEarly(socket, out) {
  let flushedAt = 0
  let flushing = false
  socket.on('data', () => {
    if (flushing || out.closed || out.fd === null || out.bytesWritten - flushedAt < 16 * 2 ** 20) return
    flushing = true
    flushedAt = out.bytesWritten
    fdatasync(out.fd, () => {
      flushing = false
    })
  })
}

const source = createServer((socket) => {
  pipeline(createReadStream(blob), socket, (err) => {
    if (err) process.stderr.write(`bare-sink: send failed: ${err.message}\n`)
  })
})

sink.listen(0, '127.0.0.1')
source.listen(0, '127.0.0.1')
await Promise.all([once(sink, 'listening'), once(source, 'listening')])
process.stdout.write(JSON.stringify({ sink: sink.address().port, source: source.address().port }) + '\n')

process.on('SIGTERM', () => {
  sink.close()
  source.close()
  process.exit(0)
})
