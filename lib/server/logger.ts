import { pino, type Logger, type Level } from 'pino'

/** JSON lines on stderr, written synchronously so the last words before an exit are not lost. */
export function createLogger(level: Level | 'silent' = 'info'): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }))
}

export type { Logger }
