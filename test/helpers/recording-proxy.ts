import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import type { Test } from 'tap'
import { onLoopback } from './fake-server.js'

/**
 * A TCP proxy on 127.0.0.1:0 that records both directions of every connection it carries: the attacker on the
 * path between two nodes. The target port may be given later (`setTarget`): a mirror must advertise the proxy's
 * address before it has a port of its own; connections that arrive meanwhile wait for it.
 *
 * With `rewriteUp` / `rewriteDown` set, that direction is held whole until its sender ends it, then forwarded as
 * the function rewrote it (what one byte changed in flight looks like); without them bytes pass as they come.
 * Everything is closed when the test ends.
 */
export interface Recorded {
  /** What the dialling side sent, as it sent it (before any rewrite). */
  up: Buffer
  /** What the target answered, as it answered it. */
  down: Buffer
  /** Resolves once both sides are closed. */
  closed: Promise<void>
}

export interface RecordingProxy {
  port: number
  address: string
  exchanges: Recorded[]
  setTarget(port: number): void
  rewriteUp?: (bytes: Buffer) => Buffer
  rewriteDown?: (bytes: Buffer) => Buffer
}

export async function recordingProxy(t: Test): Promise<RecordingProxy> {
  let setTarget!: (port: number) => void
  const target = new Promise<number>((resolve) => (setTarget = resolve))
  const sockets: Socket[] = []
  const proxy: RecordingProxy = { port: 0, address: '', exchanges: [], setTarget }
  const server = createServer({ allowHalfOpen: true }, (from) => {
    const record: Recorded = { up: Buffer.alloc(0), down: Buffer.alloc(0), closed: Promise.resolve() }
    proxy.exchanges.push(record)
    record.closed = carry(from, target, record, proxy, sockets)
  })
  proxy.port = await onLoopback(t, server, sockets)
  proxy.address = `127.0.0.1:${proxy.port}`
  return proxy
}

async function carry(from: Socket, target: Promise<number>, record: Recorded, proxy: RecordingProxy, sockets: Socket[]): Promise<void> {
  sockets.push(from)
  from.pause()
  const to = connect({ host: '127.0.0.1', port: await target, allowHalfOpen: true })
  sockets.push(to)
  const closed = Promise.all([once(from, 'close'), once(to, 'close')]).then(() => {})
  for (const s of [from, to]) s.on('error', () => (s === from ? to : from).destroy())
  pump(from, to, (b) => (record.up = Buffer.concat([record.up, b])), () => proxy.rewriteUp)
  pump(to, from, (b) => (record.down = Buffer.concat([record.down, b])), () => proxy.rewriteDown)
  from.resume()
  await closed
}

/** One direction: records every chunk, forwards it now or, with a rewrite, all at once at the end. */
function pump(src: Socket, dst: Socket, keep: (b: Buffer) => void, rewrite: () => ((b: Buffer) => Buffer) | undefined): void {
  const held: Buffer[] = []
  const change = rewrite()
  src.on('data', (chunk: Buffer) => {
    keep(chunk)
    if (change) held.push(chunk)
    else dst.write(chunk)
  })
  src.on('end', () => (change ? dst.end(change(Buffer.concat(held))) : dst.end()))
}
