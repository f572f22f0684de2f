import { readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Run by tap after the whole suite (.taprc `after`): no line any server logged during it may contain a client
 * id any server issued (lib/server/logger.ts writes both lists under DEPOSITO_LOG_AUDIT_DIR, which `npm test`
 * sets). Exits non-zero, keeping the directory for a look, if one does; removes it otherwise.
 */
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi

async function main(): Promise<number> {
  const dir = process.env.DEPOSITO_LOG_AUDIT_DIR
  if (!dir) {
    console.log('# log audit skipped: DEPOSITO_LOG_AUDIT_DIR is not set (`npm test` sets it)')
    return 0
  }
  const names = await readdir(dir).catch(() => [])
  const read = (prefix: string) => Promise.all(names.filter((n) => n.startsWith(prefix)).map(async (n) => ({ name: n, text: await readFile(join(dir, n), 'utf8') })))
  const issued = new Set((await read('ids-')).flatMap((f) => f.text.split('\n')).filter(Boolean))
  const logs = await read('log-')
  let lines = 0
  const leaks: string[] = []
  for (const { name, text } of logs) {
    for (const line of text.split('\n')) {
      if (!line) continue
      lines++
      if ((line.match(UUID) ?? []).some((u) => issued.has(u.toLowerCase()))) leaks.push(`${name}: ${line.slice(0, 300)}`)
    }
  }
  const summary = `${lines} log lines from ${logs.length} processes, against ${issued.size} issued client ids`
  if (leaks.length > 0) {
    console.error(`# log audit FAILED: ${leaks.length} of ${summary} carry a client id (kept in ${dir}):`)
    for (const leak of leaks.slice(0, 20)) console.error(`#   ${leak}`)
    return 1
  }
  console.log(`# log audit: ${summary}; none carries an id`)
  await rm(dir, { recursive: true, force: true })
  return 0
}

process.exitCode = await main()
