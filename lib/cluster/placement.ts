import { createHash } from 'node:crypto'

/**
 * Which mirrors hold a file: rendezvous (highest-random-weight) hashing on owner, name and mirror address. Every
 * file gets a stable, evenly spread choice, and when a mirror leaves only the files it held move.
 */
export function placeReplicas(owner: string, name: string, mirrors: string[], count: number): string[] {
  const score = (mirror: string) => createHash('sha256').update(`${owner}\0${name}\0${mirror}`).digest('hex')
  return mirrors
    .map((mirror) => ({ mirror, score: score(mirror) }))
    .sort((a, b) => (a.score < b.score ? 1 : a.score > b.score ? -1 : 0))
    .slice(0, count)
    .map((m) => m.mirror)
}
