import { randomUUID } from 'node:crypto'
import type { Readable } from 'node:stream'
import { DepositoError, toDepositoError } from '../protocol/errors.js'
import type { DepositoClient, DepositOptions, DepositResult } from './client.js'
import type { UploadKey, UploadTokens } from './upload-tokens.js'

/**
 * Automatic retries of a transfer cut by the network, resuming where the bytes stopped. Only a dropped, timed-out
 * or unreachable connection is retried (and BUSY naming our own upload: the server still holds the cut
 * connection); every other error is an answer. Backoff is 0.5 s doubling to 10 s, jittered so that many clients
 * cut by one outage do not come back in step.
 */
export const DEFAULT_RETRIES = 5
const CUTS = new Set(['CONNECTION_LOST', 'TIMEOUT', 'UNREACHABLE'])

export interface RetryPolicy {
  /** Retries after the first try (the command makes at most retries + 1 tries). */
  retries: number
  /** Injected by tests; real time otherwise. */
  sleep?: (ms: number) => Promise<void>
  random?: () => number
}

/** The wait before retry `n` (1-based). */
export function backoffMs(n: number, random: () => number = Math.random): number {
  const base = Math.min(10_000, 500 * 2 ** (n - 1))
  return Math.round(base / 2 + (random() * base) / 2)
}

export function isCut(err: DepositoError, upload?: string): boolean {
  return CUTS.has(err.code) || (upload !== undefined && err.code === 'BUSY' && err.message.includes(upload))
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Runs `attempt` until it succeeds, fails with something that is not a cut, or the tries run out. `attempt` gets
 * the try's number (1-based) and the error that ended the previous try, if any.
 */
export async function withRetries<T>(policy: RetryPolicy, attempt: (n: number, previous?: DepositoError) => Promise<T>, cut: (e: DepositoError) => boolean = isCut): Promise<T> {
  let previous: DepositoError | undefined
  for (let n = 1; ; n++) {
    try {
      return await attempt(n, previous)
    } catch (err) {
      previous = toDepositoError(err, 'IO_ERROR')
      if (n > policy.retries || !cut(previous)) throw previous
      await (policy.sleep ?? realSleep)(backoffMs(n, policy.random))
    }
  }
}

/** What stderr says when a try resumes: where the previous one stopped, and where this one starts. */
export interface ResumeNote {
  lostAt: number
  from: number
  attempt: number
  of: number
  error: DepositoError
}

export interface ResumableDeposit extends Omit<DepositOptions, 'reopen' | 'upload' | 'offset'> {
  /** A regular file (size set): re-opened from byte 0 for each try. */
  file?: { path: string; mtimeMs: number; open: () => Readable }
  /** A pipe: read once, never retried after its first byte was consumed. */
  source?: Readable
  /** Where tokens are kept; absent with --no-resume (no token is sent, a retry starts over). */
  tokens?: UploadTokens
  policy: RetryPolicy
  onResume?: (note: ResumeNote) => void
  /** A line for the user (stderr), e.g. why a pipe is not retried. */
  notify?: (line: string) => void
}

export async function depositWithRetry(client: DepositoClient, options: ResumableDeposit): Promise<DepositResult> {
  const { file, tokens, policy } = options
  let key: UploadKey | undefined
  let token: string | undefined
  // A token found in uploads.json may have a partial on the server; a new one has none until we send.
  let mayHold = false
  if (file && tokens && options.size !== undefined) {
    key = { ...(await client.writeScope()), name: options.name, path: file.path, size: options.size, mtimeMs: file.mtimeMs }
    token = await tokens.get(key)
    mayHold = token !== undefined
    if (!token) await tokens.save(key, (token = randomUUID()))
  }
  let shown = 0
  let pipeSpent = false
  const done = await withRetries(
    policy,
    async (n, previous) => {
      let offset = 0
      if (token && mayHold) {
        const held = await client.uploadOffset(token)
        // A partial for another size or name is not this deposit's: sent from 0 (the server truncates it).
        const ours = held && held.size === options.size && held.offset <= held.size && (held.name === undefined || held.name === options.name)
        offset = ours ? held.offset : 0
      }
      if (previous) options.onResume?.({ lostAt: shown, from: offset, attempt: n, of: policy.retries + 1, error: previous })
      let consumed = 0
      const source = file ? file.open() : options.source!
      try {
        return await client.deposit(source, {
          ...options,
          upload: token,
          offset,
          reopen: file?.open,
          onBytes: (bytes) => {
            consumed = bytes
            // The prefix is re-hashed locally before the first byte goes out: the bar holds at the resumed offset.
            shown = Math.max(bytes, offset)
            options.onBytes?.(shown)
          },
        })
      } catch (err) {
        const e = toDepositoError(err, 'IO_ERROR')
        if (!file && consumed > 0 && isCut(e)) {
          options.notify?.('a deposit from a pipe cannot be resumed')
          pipeSpent = true
        }
        mayHold = token !== undefined
        throw e
      } finally {
        if (file) source.destroy()
      }
    },
    (e) => !pipeSpent && isCut(e, token),
  ).catch(async (err: DepositoError) => {
    // The server deleted a partial whose whole hash did not match: the next run must start over.
    if (key && err.code === 'HASH_MISMATCH') await tokens!.remove(key)
    throw err
  })
  if (key) await tokens!.remove(key)
  return done
}
