import { once } from 'node:events'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { Test } from 'tap'

/**
 * A bare TCP server on 127.0.0.1:0 that hands each socket to `onSocket`: for playing a misbehaving deposito
 * server to the client. Sockets and server are closed when the test ends.
 */
export async function listen(t: Test, onSocket: (s: Socket) => void): Promise<{ port: number; sockets: Socket[] }> {
  const sockets: Socket[] = []
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s)
    s.on('error', () => {})
    onSocket(s)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { port: (server.address() as AddressInfo).port, sockets }
}

/** A port that was just free on 127.0.0.1: connecting to it is refused. */
export async function closedPort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Listens on 127.0.0.1:0 and closes the server and `sockets` when the test ends; resolves with the port. */
export async function onLoopback(t: Test, server: Server, sockets: Socket[]): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return (server.address() as AddressInfo).port
}
