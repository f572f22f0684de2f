/**
 * Every failure deposito reports is a DepositoError with a stable code. The same code travels in a server's
 * `status:error` reply, is printed by the client, and picks the client's exit status, so a script can branch on
 * it without parsing prose. PROTOCOL.md and the README carry this table; keep them in step.
 */
export const ERROR_CODES = {
  INTERNAL: { exit: 1, summary: 'unexpected failure (a bug, or an unreadable disk)' },
  USAGE: { exit: 2, summary: 'the command line is wrong' },
  DEGRADED: { exit: 3, summary: 'stored, but on fewer mirrors than asked; the server restores the count later' },
  BAD_HEADER: { exit: 10, summary: 'the request line is malformed, too long, or misses a field' },
  BAD_NAME: { exit: 11, summary: 'the file name is empty or too long' },
  BAD_BODY: { exit: 12, summary: 'the body is shorter or longer than announced, or badly framed' },
  HASH_MISMATCH: { exit: 13, summary: 'the bytes do not hash to hash_arquivo' },
  NOT_FOUND: { exit: 14, summary: 'no file by that name for this client' },
  UNKNOWN_CLIENT: { exit: 15, summary: 'id_cliente was never issued by this server' },
  NO_REPLICAS: { exit: 16, summary: 'more replicas asked for than the cluster has mirrors' },
  NO_SPACE: { exit: 17, summary: 'the server has no room for the file' },
  BUSY: { exit: 18, summary: 'the server is at its connection limit, the file kept changing under a replicas change, or a scrub is under way' },
  TIMEOUT: { exit: 19, summary: 'the other side went quiet for longer than the idle timeout' },
  SHUTTING_DOWN: { exit: 20, summary: 'the server is stopping' },
  UNREACHABLE: { exit: 21, summary: 'no server answers at that address' },
  CONNECTION_LOST: { exit: 22, summary: 'the connection dropped before the reply' },
  IO_ERROR: { exit: 23, summary: 'a local file could not be read or written' },
  PROTOCOL_ERROR: { exit: 24, summary: 'the other side broke the protocol' },
  UNAUTHORIZED: { exit: 25, summary: 'a peer request without a valid cluster signature' },
  NOT_PRIMARY: { exit: 26, summary: 'this node is a mirror: writes go to the primary it names' },
  UNTRUSTED: { exit: 27, summary: "the server's certificate is not the one pinned for that address" },
  TLS_REQUIRED: { exit: 28, summary: 'this node accepts only TLS connections' },
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code)
}

/** Where to go instead, for NOT_PRIMARY: the primary's address, as the refusing mirror knows it. */
export interface ErrorDetails {
  primary?: string
}

export class DepositoError extends Error {
  override name = 'DepositoError'
  readonly code: ErrorCode
  readonly details: ErrorDetails

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: ErrorDetails }) {
    super(message, options)
    this.code = code
    this.details = options?.details ?? {}
  }

  get exitCode(): number {
    return ERROR_CODES[this.code].exit
  }
}

/** System errors that mean the same thing wherever they happen. */
const SYSTEM_CODES: Record<string, ErrorCode> = {
  ENOSPC: 'NO_SPACE',
  EDQUOT: 'NO_SPACE',
  ECONNREFUSED: 'UNREACHABLE',
  EHOSTUNREACH: 'UNREACHABLE',
  ENETUNREACH: 'UNREACHABLE',
  ENOTFOUND: 'UNREACHABLE',
  EAI_AGAIN: 'UNREACHABLE',
  ECONNRESET: 'CONNECTION_LOST',
  EPIPE: 'CONNECTION_LOST',
  ERR_STREAM_PREMATURE_CLOSE: 'CONNECTION_LOST',
  ETIMEDOUT: 'TIMEOUT',
}

/**
 * The one place that decides what an arbitrary thrown value means. `fallback` names the code for errors we do not
 * recognise: a server says INTERNAL, a client reading a local file says IO_ERROR.
 */
export function toDepositoError(err: unknown, fallback: ErrorCode = 'INTERNAL'): DepositoError {
  if (err instanceof DepositoError) return err
  const sys = err as NodeJS.ErrnoException | undefined
  const mapped = typeof sys?.code === 'string' && Object.hasOwn(SYSTEM_CODES, sys.code) ? SYSTEM_CODES[sys.code] : undefined
  const message = err instanceof Error ? err.message : String(err)
  return new DepositoError(mapped ?? fallback, message, { cause: err })
}

/** A failure of a local file or stream (ours, not the server's): always IO_ERROR, whatever its errno. */
export function localIoError(err: unknown, what: string): DepositoError {
  if (err instanceof DepositoError) return err
  return new DepositoError('IO_ERROR', `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
}
