import t from 'tap'
import { DepositoError, ERROR_CODES, isErrorCode, toDepositoError, type ErrorCode } from '../../lib/protocol/errors.js'

const codes = Object.keys(ERROR_CODES) as ErrorCode[]

function sysError(code: string, message = `${code} happened`): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code })
}

t.test('DepositoError carries its code, message, cause and exit status', async (t) => {
  const cause = new Error('root')
  const err = new DepositoError('NOT_FOUND', 'no such file', { cause })
  t.ok(err instanceof Error)
  t.ok(err instanceof DepositoError)
  t.equal(err.name, 'DepositoError')
  t.equal(err.code, 'NOT_FOUND')
  t.equal(err.message, 'no such file')
  t.equal(err.cause, cause)
  t.equal(err.exitCode, 14)
  t.equal(new DepositoError('INTERNAL', 'x').cause, undefined)
})

t.test('every code has its own non-zero exit status and a summary', async (t) => {
  const exits = codes.map((c) => ERROR_CODES[c].exit)
  t.equal(new Set(exits).size, codes.length, 'exit statuses are distinct')
  for (const code of codes) {
    const exit = new DepositoError(code, 'm').exitCode
    t.equal(exit, ERROR_CODES[code].exit, `${code} exitCode comes from the table`)
    t.ok(Number.isInteger(exit) && exit > 0 && exit < 126, `${code} exit ${exit} is a usable process status`)
    t.ok(ERROR_CODES[code].summary.length > 0, `${code} has a summary`)
  }
  t.equal(ERROR_CODES.INTERNAL.exit, 1)
  t.equal(ERROR_CODES.USAGE.exit, 2)
})

t.test('isErrorCode accepts exactly the table keys', async (t) => {
  for (const code of codes) t.ok(isErrorCode(code), code)
  for (const bad of ['', 'nope', 'not_found', 'constructor', 'toString', '__proto__', 'hasOwnProperty', 'ENOSPC']) {
    t.notOk(isErrorCode(bad), JSON.stringify(bad))
  }
})

t.test('toDepositoError maps system errors by errno code', async (t) => {
  const table: Record<string, ErrorCode> = {
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
  for (const [sys, want] of Object.entries(table)) {
    const cause = sysError(sys)
    // The mapping wins over any fallback: these mean the same thing wherever they happen.
    const err = toDepositoError(cause, 'IO_ERROR')
    t.equal(err.code, want, `${sys} -> ${want}`)
    t.equal(err.message, `${sys} happened`)
    t.equal(err.cause, cause)
  }
})

t.test('toDepositoError falls back for what it does not recognise', async (t) => {
  t.equal(toDepositoError(sysError('EACCES')).code, 'INTERNAL', 'default fallback is INTERNAL')
  t.equal(toDepositoError(sysError('EACCES'), 'IO_ERROR').code, 'IO_ERROR')
  t.equal(toDepositoError(new Error('plain')).code, 'INTERNAL')
  t.equal(toDepositoError(new TypeError('t'), 'UNREACHABLE').code, 'UNREACHABLE')
  t.equal(toDepositoError(Object.assign(new Error('numeric'), { code: 404 })).code, 'INTERNAL')

  const fromString = toDepositoError('boom', 'IO_ERROR')
  t.equal(fromString.code, 'IO_ERROR')
  t.equal(fromString.message, 'boom')
  t.equal(fromString.cause, 'boom')
  t.equal(toDepositoError(undefined).message, 'undefined')
  t.equal(toDepositoError(null).message, 'null')
  t.equal(toDepositoError(null).code, 'INTERNAL')
  t.equal(toDepositoError(42).message, '42')
  // A non-Error object that still carries an errno code is mapped.
  t.equal(toDepositoError({ code: 'ENOSPC' }).code, 'NO_SPACE')
})

t.test('toDepositoError passes a DepositoError through untouched', async (t) => {
  const original = new DepositoError('HASH_MISMATCH', 'bad bytes')
  t.equal(toDepositoError(original), original)
  t.equal(toDepositoError(original, 'IO_ERROR'), original)
  t.equal(toDepositoError(original, 'IO_ERROR').code, 'HASH_MISMATCH')
})

t.test(
  'toDepositoError ignores codes that only exist on Object.prototype',
  async (t) => {
    for (const code of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      const err = toDepositoError(sysError(code), 'IO_ERROR')
      t.equal(err.code, 'IO_ERROR', `code ${code} falls back`)
      t.doesNotThrow(() => err.exitCode, `code ${code} still has an exit status`)
    }
  },
)
