import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import type { Test } from 'tap'

/**
 * A TCP relay on 127.0.0.1:0 that forwards every connection to `target` and keeps every byte it carried, in both
 * directions: what someone on the path between two nodes would see. Half-closes are relayed as such (the
 * protocol's requests end with one). Closed, with every relayed connection, when the test ends.
 */
export interface RecordingProxy {
  port: number
  address: string
  /** Client-to-server bytes, then server-to-client bytes, of every connection so far. */
  recorded(): Buffer
  /** How many connections it has relayed. */
  connections(): number
  /** Where later connections go (a node whose port is known only once it listens behind the proxy). */
  retarget(port: number): void
}

export async function startRecordingProxy(t: Test, target: { host?: string; port: number }): Promise<RecordingProxy> {
  const upstream: Buffer[] = []
  const downstream: Buffer[] = []
  const sockets = new Set<Socket>()
  let count = 0
  let targetPort = target.port
  const track = (s: Socket) => {
    sockets.add(s)
    s.on('error', () => {})
    s.once('close', () => sockets.delete(s))
  }
  const server = createServer({ allowHalfOpen: true }, (inbound) => {
    count++
    const outbound = connect({ host: target.host ?? '127.0.0.1', port: targetPort, allowHalfOpen: true })
    track(inbound)
    track(outbound)
    inbound.on('data', (d: Buffer) => upstream.push(Buffer.from(d)))
    outbound.on('data', (d: Buffer) => downstream.push(Buffer.from(d)))
    inbound.pipe(outbound)
    outbound.pipe(inbound)
    // A reset on one side is a reset on the other: pipe() alone would leave it open.
    inbound.once('close', () => outbound.destroy())
    outbound.once('close', () => inbound.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return {
    port,
    address: `127.0.0.1:${port}`,
    recorded: () => Buffer.concat([...upstream, ...downstream]),
    connections: () => count,
    retarget: (p) => {
      targetPort = p
    },
  }
}
