import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream, rmSync } from 'node:fs'
import { open, rename, rm, stat, truncate } from 'node:fs/promises'
import { dirname } from 'node:path'
import { Writable } from 'node:stream'
import { DepositoError, localIoError } from '../protocol/errors.js'
import type { FileInfo } from '../protocol/replies.js'
import type { DepositoClient } from '../client/client.js'
import { isCut, withRetries, type RetryPolicy } from '../client/resume.js'
import { fsyncDir } from '../store/durable-fs.js'
import { onInterrupt } from './interrupt.js'

/**
 * A retrieval into a file, resumable: the bytes go to `FILE.partial` beside the target (a name a re-run finds
 * again), which a cut leaves in place; the next try asks for the bytes after its length, re-hashing the ones it
 * holds, since only the whole file's sha256 is known. Any other failure deletes the partial: a wrong hash or a
 * partial longer than the file cannot be resumed. Only a checked file is fsynced and renamed into place, so a
 * failed retrieval never leaves a corrupt file, nor destroys the one that was there.
 */
export type OnBytes = (bytes: number, info: FileInfo) => void

export function partialPath(path: string): string {
  return `${path}.partial`
}

export async function retrieveToFile(client: DepositoClient, name: string, path: string, onBytes: OnBytes, policy: RetryPolicy, onResume: (from: number) => void): Promise<FileInfo> {
  const partial = partialPath(path)
  // Ctrl-C is the user giving up, not a cut: the partial goes all the same.
  const forget = onInterrupt(() => rmSync(partial, { force: true }))
  try {
    const info = await withRetries(policy, async (_n, previous) => {
      const held = await heldBytes(partial, path)
      if (previous) onResume(held.offset)
      const sink = createWriteStream(partial, { flags: 'a' })
      const fresh = () => createHash('sha256')
      try {
        return await client.retrieve(name, sink, onBytes, {
          ...held,
          fresh,
          // The server sent from byte 0 (it ignores offsets): start the partial over.
          fromZero: async () => {
            await truncate(partial, 0)
            return 0
          },
        })
      } finally {
        // A refusal comes before any byte: the stream was never piped, and would keep its descriptor. A write still
        // under way when a cut destroys it lands after: the next try measures the partial once it has.
        sink.destroy()
        if (!sink.closed) await new Promise<void>((resolve) => sink.once('close', () => resolve()))
      }
    })
    const handle = await open(partial, 'r+')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(partial, path)
    await fsyncDir(dirname(path))
    return info
  } catch (err) {
    if (!(err instanceof DepositoError && isCut(err))) await rm(partial, { force: true })
    throw err
  } finally {
    forget()
  }
}

/** The partial's length and the sha256 state of its bytes; an unwritable target fails here, before any request. */
async function heldBytes(partial: string, path: string): Promise<{ offset: number; hash: ReturnType<typeof createHash> }> {
  const hash = createHash('sha256')
  try {
    await (await open(partial, 'a')).close()
    const { size } = await stat(partial)
    if (size > 0) for await (const chunk of createReadStream(partial, { end: size - 1 })) hash.update(chunk as Buffer)
    return { offset: size, hash }
  } catch (err) {
    throw localIoError(err, `cannot write ${path}`)
  }
}

/**
 * `-o -`: stdout cannot be rewound, but a retry can ask for the bytes after those already written. What was
 * written is hashed here as it goes; each try continues from a copy of that state and checks the whole hash.
 */
export async function retrieveToStream(client: DepositoClient, name: string, out: NodeJS.WritableStream, onBytes: OnBytes, policy: RetryPolicy, onResume: (from: number) => void): Promise<FileInfo> {
  const written = createHash('sha256')
  let count = 0
  return withRetries(policy, async (_n, previous) => {
    if (previous) onResume(count)
    // A failed try destroys its sink; this one stands between the try and stdout, which must stay open.
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.write(chunk, (err) => {
          if (err) return cb(err)
          written.update(chunk)
          count += chunk.length
          cb()
        })
      },
    })
    const start = count
    return client.retrieve(name, sink, onBytes, {
      offset: start,
      hash: written.copy(),
      fresh: () => createHash('sha256'),
      fromZero: async () => start,
    })
  })
}
