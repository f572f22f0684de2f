import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import type { Test } from 'tap'

/**
 * Sockets that send a few bytes of a request line and then say nothing: the cheapest way to hold a server's
 * connection slots. Each records the first line the server sends it (a BUSY, a TIMEOUT), if any; all are
 * destroyed when the test ends.
 */
export interface IdleSocket {
  socket: Socket
  /** The server's first line, or undefined if it closed without one. */
  reply: Promise<string | undefined>
  /** Whether `reply` has settled. */
  answered: boolean
}

export async function openIdleSockets(t: Test, port: number, count: number, bytes = 'op:'): Promise<IdleSocket[]> {
  const idle: IdleSocket[] = []
  t.teardown(() => {
    for (const { socket } of idle) socket.destroy()
  })
  // One at a time: the server accepts them in this order, which the eviction tests rely on.
  for (let i = 0; i < count; i++) {
    const socket = connect({ host: '127.0.0.1', port })
    socket.on('error', () => {})
    let received = ''
    const entry: IdleSocket = {
      socket,
      answered: false,
      reply: new Promise((resolve) => {
        socket.on('data', (d: Buffer) => {
          received += d.toString()
          if (received.includes('\n')) resolve(received.slice(0, received.indexOf('\n')))
        })
        socket.once('close', () => resolve(undefined))
      }),
    }
    void entry.reply.then(() => (entry.answered = true))
    idle.push(entry)
    await once(socket, 'connect')
    socket.write(bytes)
  }
  return idle
}
