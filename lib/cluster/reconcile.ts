import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import split2 from 'split2'
import type { Logger } from 'pino'
import { DepositoError } from '../protocol/errors.js'
import { decodeFields } from '../protocol/fields.js'
import { parseCount } from '../protocol/values.js'
import { type FileInfo } from '../protocol/replies.js'
import type { BlobStore } from '../store/blob-store.js'
import type { PeerClient } from './peer-client.js'
import { clientTag } from '../protocol/client-tag.js'

/**
 * What the primary's records say a mirror holds, checked against what it really holds. The mirror streams one
 * line per copy (`holdings`); the primary keeps only the copies its own records place on that mirror (its index
 * is in memory anyway) and strikes each one the mirror names, so a large mirror's list is never collected. Those
 * left over are gone from the mirror (a wiped disk, a copy scrubbed away): the mirror is taken off their records,
 * which puts them under their count for the repair pass to restore. Copies the primary has no record of are left
 * alone: a primary that lost its records must not talk its mirrors into deleting theirs.
 */
export interface ReconcileDeps {
  store: BlobStore
  peers: PeerClient
  log: Logger
}

const keyOf = (owner: string, name: string, sha256: string) => JSON.stringify([owner, name, sha256])

/** Resolves with the number of records the mirror was taken off. */
export async function reconcileMirror(deps: ReconcileDeps, mirror: string): Promise<number> {
  const { store, peers, log } = deps
  const expected = new Map<string, { owner: string; info: FileInfo }>()
  for (const { owner, info } of store.allFiles()) if (info.mirrors?.includes(mirror)) expected.set(keyOf(owner, info.name, info.sha256), { owner, info })
  const { fields, body, socket } = await peers.stream(mirror, { op: 'holdings' })
  let lines = 0
  try {
    const total = parseCount('quantidade', fields.quantidade ?? '')
    const strike = new Writable({
      objectMode: true,
      write(line: string, _enc, cb) {
        const f = decodeFields(line)
        expected.delete(keyOf(f.id_cliente ?? '', f.nome_arquivo ?? '', f.hash_arquivo ?? ''))
        lines++
        cb()
      },
    })
    // Lines are capped like every reply line: a hostile or broken peer cannot grow one without bound.
    await pipeline(body, split2({ maxLength: 64 * 1024 }), strike)
    // A list cut short would make every copy after the cut look missing.
    if (lines !== total) throw new DepositoError('PROTOCOL_ERROR', `the mirror announced ${total} copies and listed ${lines}`)
  } finally {
    socket.destroy()
  }
  let fixed = 0
  for (const { owner, info } of expected.values()) {
    // Judged only if the record is the one read before asking (checked again under the store's lock): a copy
    // pushed or deposited since may be newer than the mirror's list.
    const updated = await store.updateRecordIf(owner, info, { replicas: info.replicas, mirrors: info.mirrors!.filter((m) => m !== mirror) })
    if (!updated) continue
    log.warn({ mirror, owner: clientTag(owner), name: info.name, sha256: info.sha256 }, 'a mirror lacks a copy its record names')
    fixed++
  }
  return fixed
}

/** Asks a mirror to re-hash its next `bytes` of copies (it drops those that fail); resolves with its figures. */
export async function scrubMirror(peers: PeerClient, mirror: string, bytes: number): Promise<{ checked: number; dropped: number }> {
  const reply = await peers.request(mirror, { op: 'scrub', bytes })
  return { checked: Number(reply.verificados), dropped: Number(reply.removidos) }
}
