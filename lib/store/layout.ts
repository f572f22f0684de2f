import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { parseClientId } from '../protocol/values.js'

/**
 * Where things live under `--data DIR`:
 *
 *   tmp/                                 uploads in progress; emptied at every start
 *   clients/<id_cliente>/                exists once the id has been issued (this is the id registry)
 *   clients/<id_cliente>/files/<k>.json  one per stored name; k = sha256(name), so no name can form a path
 *   clients/<id_cliente>/blobs/<sha256>  the bytes, named by their own hash; shared by a client's names
 *   partials/<id_cliente>/<token>[.json] resumable deposits in progress (partial-uploads.ts); neither swept at
 *                                        start nor collected, only expired by their own TTL
 *
 * The metadata file is the commit record: a name exists exactly when its .json does, and a blob no .json
 * refers to is garbage. Client ids are checked against the UUID form before they become a path component.
 */
export class Layout {
  constructor(readonly root: string) {}

  get tmp(): string {
    return join(this.root, 'tmp')
  }

  get clients(): string {
    return join(this.root, 'clients')
  }

  client(id: string): string {
    return join(this.clients, parseClientId(id))
  }

  files(id: string): string {
    return join(this.client(id), 'files')
  }

  blobs(id: string): string {
    return join(this.client(id), 'blobs')
  }

  meta(id: string, name: string): string {
    return join(this.files(id), `${createHash('sha256').update(name).digest('hex')}.json`)
  }

  blob(id: string, sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new TypeError(`not a sha256: ${sha256}`)
    return join(this.blobs(id), sha256)
  }
}
