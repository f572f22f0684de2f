import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino, type DestinationStream, type Logger, type Level } from 'pino'
import { clientTag } from '../protocol/client-tag.js'

/**
 * JSON lines on stderr, written synchronously so the last words before an exit are not lost.
 *
 * No line may carry a client id, the key to its files (README, "Your id is your key"): call sites log
 * `clientTag(id)`, and every line also passes through `hideClientIds`, for ids inside text we do not write
 * ourselves (a file system error naming a path under clients/, a refusal's message).
 *
 * With DEPOSITO_LOG_AUDIT_DIR set (the test suite sets it), every line, at every level, is also appended to a
 * file there, and each id issued to another, so a check after the suite can prove no line held an issued id.
 */
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
const CLIENT_ID_IN_TEXT = new RegExp(`(clients[/\\\\]+|id_cliente[ :=]+)(${UUID})`, 'gi')

export function hideClientIds(line: string): string {
  return line.replace(CLIENT_ID_IN_TEXT, (_m, before: string, id: string) => `${before}<tag ${clientTag(id.toLowerCase())}>`)
}

export function createLogger(level: Level | 'silent' = 'info'): Logger {
  const options = { level, base: { pid: process.pid }, hooks: { streamWrite: hideClientIds } }
  const stderr = pino.destination({ dest: 2, sync: true })
  const audit = auditLog()
  if (!audit) return pino(options, stderr)
  const streams: { level: Level; stream: DestinationStream }[] = [{ level: 'trace', stream: audit }]
  if (level !== 'silent') streams.push({ level, stream: stderr })
  return pino({ ...options, level: 'trace' }, pino.multistream(streams))
}

/** Logs that a client id was issued, by its tag; under the audit, the id itself goes to the audit's list. */
export function logIssuedId(log: Logger, id: string): void {
  log.info({ client: clientTag(id) }, 'issued a new client id')
  const dir = process.env.DEPOSITO_LOG_AUDIT_DIR
  if (dir) appendFileSync(join(dir, `ids-${process.pid}.txt`), `${id}\n`)
}

/** One audit file per process, shared by every logger in it (a test process starts many servers). */
let audit: DestinationStream | undefined
function auditLog(): DestinationStream | undefined {
  const dir = process.env.DEPOSITO_LOG_AUDIT_DIR
  if (dir) audit ??= pino.destination({ dest: join(dir, `log-${process.pid}.jsonl`), sync: true, append: true, mkdir: true })
  return dir ? audit : undefined
}

export type { Logger }
