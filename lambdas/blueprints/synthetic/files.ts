/**
 * The synthetic filesystem: files are records per host (`synthetic:<blueprintId>:files:<hostId>`),
 * content base64, last write wins. A gone host has no files.
 */
import type { BlueprintContext, FilesystemInterface } from '../../core/blueprint.ts';
import { NotFoundError } from '../../core/errors.ts';
import type { Lease, Resource } from '../../core/model.ts';
import { relativePathInside } from '../shared.ts';
import type { Synthetic } from './config.ts';
import { requireLiveHost } from './hosts.ts';
import { appendRecord, listInWriteOrder, syntheticScopes } from './records.ts';

export function syntheticFilesystem(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  resource: Resource,
  lease: Lease,
): FilesystemInterface {
  return {
    async put(path, content) {
      const rel = relativePathInside(path, 'path');
      const host = await requireLiveHost(ctx, blueprint, resource);
      const bytes =
        typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
      await appendRecord(ctx, syntheticScopes.files(blueprint.id, host.hostId), {
        path: rel,
        content: bytes.toString('base64'),
        leaseId: lease.id,
      });
    },
    async get(path) {
      const rel = relativePathInside(path, 'path');
      const host = await requireLiveHost(ctx, blueprint, resource);
      const records = await listInWriteOrder(ctx, syntheticScopes.files(blueprint.id, host.hostId));
      const last = records.findLast((r) => r.path === rel && typeof r.content === 'string');
      if (!last) throw new NotFoundError('file', `${host.hostId}:${rel}`);
      return new Uint8Array(Buffer.from(last.content as string, 'base64'));
    },
  };
}
