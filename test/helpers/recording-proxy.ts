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
  /** Where connections go from now on; connections that arrived before any target wait for the first. */
  setTarget(port: number): void
  /** Every byte carried so far: each connection's upstream bytes, then its downstream bytes. */
  recorded(): Buffer
  connections(): number
  rewriteUp?: (bytes: Buffer) => Buffer
  rewriteDown?: (bytes: Buffer) => Buffer
}

export async function recordingProxy(t: Test): Promise<RecordingProxy> {
  let current: number | undefined
  let first!: (port: number) => void
  const firstTarget = new Promise<number>((resolve) => (first = resolve))
  const target = () => (current === undefined ? firstTarget : Promise.resolve(current))
  const setTarget = (port: number) => {
    current = port
    first(port)
  }
  const sockets: Socket[] = []
  const proxy: RecordingProxy = {
    port: 0,
    address: '',
    exchanges: [],
    setTarget,
    recorded: () => Buffer.concat(proxy.exchanges.flatMap((e) => [e.up, e.down])),
    connections: () => proxy.exchanges.length,
  }
  const server = createServer({ allowHalfOpen: true }, (from) => {
    const record: Recorded = { up: Buffer.alloc(0), down: Buffer.alloc(0), closed: Promise.resolve() }
    proxy.exchanges.push(record)
    record.closed = carry(from, target, record, proxy, sockets)
  })
  proxy.port = await onLoopback(t, server, sockets)
  proxy.address = `127.0.0.1:${proxy.port}`
  return proxy
}

async function carry(from: Socket, target: () => Promise<number>, record: Recorded, proxy: RecordingProxy, sockets: Socket[]): Promise<void> {
  sockets.push(from)
  from.pause()
  const to = connect({ host: '127.0.0.1', port: await target(), allowHalfOpen: true })
  sockets.push(to)
  // Not events.once: it rejects on 'error' (a target gone at teardown refuses the connection), and nobody awaits that.
  const closed = Promise.all([from, to].map((s) => new Promise((resolve) => s.once('close', resolve)))).then(() => {})
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

/** A proxy already aimed at `target` (its `setTarget` re-aims it for later connections). */
export async function startRecordingProxy(t: Test, target: { port: number }): Promise<RecordingProxy> {
  const proxy = await recordingProxy(t)
  proxy.setTarget(target.port)
  return proxy
}
