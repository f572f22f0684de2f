import { DepositoError, toDepositoError, type ErrorCode } from '../protocol/errors.js'

/**
 * Errors say what happened (the server's message, or ours); a person also needs what to do about it. One hint
 * per code, added by the client only: the server's replies stay terse, and a script still branches on the code.
 * Messages that already carry their fix (UNREACHABLE names `npm start` and --server) get none.
 */
const HINTS: Partial<Record<ErrorCode, (idsFile: string) => string>> = {
  INTERNAL: () => 'this is a bug: please report it, with the server log if the server said it',
  NOT_FOUND: () => '`deposito-client list` shows the names you have stored',
  UNKNOWN_CLIENT: (idsFile) => `pass the right --id, or remove its entry from ${idsFile} to be issued a new one`,
  NO_REPLICAS: () => 'ask for fewer (`deposito-client status` lists the cluster\'s mirrors)',
  NO_SPACE: () => 'the server\'s disk is full: delete files you no longer need, or ask its operator for room',
  BUSY: () => 'try again in a moment',
  TIMEOUT: () => 'try again; if it keeps happening the server or the network is overloaded',
  SHUTTING_DOWN: () => 'try again once it is back; reads also work from a mirror (--server primary:port,mirror:port)',
  CONNECTION_LOST: () => 'try again; reads also work from a mirror (--server primary:port,mirror:port)',
  HASH_MISMATCH: () => 'the bytes were damaged on the way; try again',
  IO_ERROR: () => 'check the path and its permissions',
  NOT_PRIMARY: () => 'writes go to the primary: name it first in --server (a piped deposit cannot be sent twice; run it again)',
  PROTOCOL_ERROR: () => 'is a deposito server listening at that address? check --server',
  // The same words as the server's refusal, so our own nodes' message is not told twice.
  TLS_REQUIRED: () => 'use --tls (bin/client) or DEPOSITO_TLS=1',
  UNTRUSTED: () => 'someone may be intercepting the connection: re-pin only after checking the fingerprint on the server itself',
}

/** `err` as a DepositoError whose message ends with what to do about it. `idsFile`: where issued ids are saved. */
export function withHint(err: unknown, idsFile: string): DepositoError {
  const e = toDepositoError(err)
  const hint = HINTS[e.code]?.(idsFile)
  if (hint && !e.message.includes(hint)) e.message += ` — ${hint}`
  return e
}

/** The one line a failure prints on stderr. */
export function errorLine(e: DepositoError): string {
  return `deposito: ${e.code}: ${e.message}\n`
}
