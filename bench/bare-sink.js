// The baseline server: the least any TCP file depot must do, with none of deposito's framing, hashing, logging or
// metadata. Run as its own process (like deposito's server) so the parent/child CPU split is the same on both
// sides and its peak RSS can be read from /proc.
//
//   node bench/bare-sink.js DIR   → prints {"sink":PORT,"source":PORT} on stdout, then serves until SIGTERM.
//
// sink port:   every byte until the peer's half-close goes to DIR/blob (fsynced before close, as deposito's
//              store does), then one line "ok BYTES\n" and close.
// source port: DIR/blob is streamed to the peer, then close.
// Two ports rather than a request line, so there is not even a header to parse.
import { createServer } from 'node:net'
import { createReadStream, createWriteStream } from 'node:fs'
import { join } from 'node:path'
import { pipeline } from 'node:stream'
import { once } from 'node:events'

const dir = process.argv[2]
if (!dir) {
  process.stderr.write('usage: node bench/bare-sink.js DIR\n')
  process.exit(2)
}
const blob = join(dir, 'blob')

// allowHalfOpen: the peer ends its side to say "that was all", and still has to read our reply.
const sink = createServer({ allowHalfOpen: true }, (socket) => {
  const out = createWriteStream(blob, { flush: true })
  socket.pipe(out)
  socket.on('error', (err) => out.destroy(err))
  out.on('error', (err) => {
    process.stderr.write(`bare-sink: write failed: ${err.message}\n`)
    socket.destroy()
  })
  // 'close' comes after the fsync and close of the file: only then are the bytes as safe as deposito's.
  out.on('close', () => {
    if (!out.errored) socket.end(`ok ${out.bytesWritten}\n`)
  })
})

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
