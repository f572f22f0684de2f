import { createHash } from 'node:crypto'

/**
 * What a log line says instead of a client id. The id is the only key to a client's files, so whoever reads
 * the logs must not learn it; the tag still lets an operator follow one client through them (and a client, who
 * knows its id, compute its own). One-way and short: 48 bits are plenty to tell clients apart in a log, and far
 * too few to mistake for the id.
 */
export function clientTag(id: string): string {
  return createHash('sha256').update(`deposito client tag\n${id}`).digest('hex').slice(0, 12)
}
