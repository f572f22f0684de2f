import t from 'tap'
import { DepositoError, ERROR_CODES, type ErrorCode } from '../../lib/protocol/errors.js'
import { errorLine, withHint } from '../../lib/cli/hints.js'

// Every error a person can meet names its cause (the message) and its fix (the hint).

t.test('each code that needs one gets its fix appended, once', async (t) => {
  const fixes: Partial<Record<ErrorCode, RegExp>> = {
    INTERNAL: /a bug: please report it/,
    NOT_FOUND: /`deposito-client list` shows/,
    UNKNOWN_CLIENT: /pass the right --id, or remove its entry from \/home\/u\/ids\.json/,
    NO_REPLICAS: /ask for fewer \(`deposito-client status`/,
    NO_SPACE: /disk is full/,
    BUSY: /try again in a moment/,
    TIMEOUT: /try again/,
    SHUTTING_DOWN: /from a mirror \(--server/,
    CONNECTION_LOST: /from a mirror \(--server/,
    HASH_MISMATCH: /damaged on the way; try again/,
    IO_ERROR: /check the path/,
    NOT_PRIMARY: /writes go to the primary: name it first in --server/,
    PROTOCOL_ERROR: /check --server/,
    TLS_REQUIRED: /use --tls \(bin\/client\) or DEPOSITO_TLS=1/,
    UNTRUSTED: /re-pin only after checking the fingerprint on the server itself/,
  }
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    const e = withHint(new DepositoError(code, 'what happened'), '/home/u/ids.json')
    t.equal(e.code, code)
    if (fixes[code]) t.match(e.message, new RegExp(`^what happened — .*${fixes[code].source}`), `${code}: cause, then fix`)
    else t.equal(e.message, 'what happened', `${code}: its message already says it all`)
    t.equal(withHint(e, '/home/u/ids.json').message, e.message, `${code}: never twice`)
  }
})

t.test('anything thrown becomes a coded error first', async (t) => {
  const e = withHint(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'ids.json')
  t.equal(e.code, 'UNREACHABLE')
  t.equal(errorLine(e), 'deposito: UNREACHABLE: connect ECONNREFUSED\n')
})
