import { connect, createServer, type Socket } from 'node:net'
import type { Test } from 'tap'
import { onLoopback } from './fake-server.js'

/**
 * A TCP proxy on 127.0.0.1:0 that cuts transfers: a connection whose first line matches `cutWhen` (a deposit by
 * default) takes the next budget from `cuts` and is destroyed, both sides, once it has forwarded that many bytes
 * in `direction` ('up': client to server, a deposit; 'down': a retrieve). Connections past the last budget, and
 * every other request (probes, `op:offset`), pass whole. `forwarded` counts the bytes it carried in `direction`
 * on matching connections, headers included: what a transfer cost on the wire.
 */
export interface CuttingProxy {
  port: number
  address: string
  /** Budgets still to use, in order. */
  cuts: number[]
  /** Bytes carried in `direction` on matching connections, and how many of those connections were cut. */
  forwarded: number
  cut: number
  /** First lines of the matching connections, as the proxy saw them (before the server may have). */
  matched: string[]
}

export interface CuttingOptions {
  target: number
  cuts: number[]
  direction?: 'up' | 'down'
  cutWhen?: (header: string) => boolean
}

export async function cuttingProxy(t: Test, options: CuttingOptions): Promise<CuttingProxy> {
  const direction = options.direction ?? 'up'
  const cutWhen = options.cutWhen ?? ((h: string) => h.startsWith('op:deposit|'))
  const sockets: Socket[] = []
  const proxy: CuttingProxy = { port: 0, address: '', cuts: options.cuts, forwarded: 0, cut: 0, matched: [] }
  const server = createServer({ allowHalfOpen: true }, (from) => {
    const to = connect({ host: '127.0.0.1', port: options.target, allowHalfOpen: true })
    sockets.push(from, to)
    for (const s of [from, to]) s.on('error', () => (s === from ? to : from).destroy())
    let head = ''
    let matching: boolean | undefined
    let budget = Infinity
    const carry = (src: Socket, dst: Socket, counted: boolean) => {
      src.on('data', (chunk: Buffer) => {
        if (src === from && matching === undefined) {
          head += chunk.toString('latin1')
          if (head.includes('\n')) {
            const line = head.slice(0, head.indexOf('\n'))
            matching = cutWhen(line)
            if (matching) {
              proxy.matched.push(line)
              budget = proxy.cuts.shift() ?? Infinity
            }
          }
        }
        if (!counted || !matching) return void dst.write(chunk)
        // Cut already: what still arrives before the sender's side is gone is dropped, like the rest of the wire.
        if (budget === 0) return
        const part = chunk.length <= budget ? chunk : chunk.subarray(0, budget)
        proxy.forwarded += part.length
        budget -= part.length
        if (budget > 0) return void dst.write(part)
        // What was forwarded arrives whole, then the sender's side is gone: a cut with nothing lost in between.
        proxy.cut++
        dst.end(part, () => src.destroy())
      })
      src.on('end', () => dst.end())
    }
    carry(from, to, direction === 'up')
    carry(to, from, direction === 'down')
  })
  proxy.port = await onLoopback(t, server, sockets)
  proxy.address = `127.0.0.1:${proxy.port}`
  return proxy
}

/** `n` budgets drawn at random in [min, max), for several cuts in one transfer. */
export function randomCuts(n: number, min: number, max: number): number[] {
  return Array.from({ length: n }, () => min + Math.floor(Math.random() * (max - min)))
}
