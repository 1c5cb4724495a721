/**
 * `npm start` ensures a default `working-copy` blueprint, `local-wc`, next to the default
 * `local` host blueprint it takes its hosts from, so `drydock lease --repo <url> -- <command>`
 * works on a fresh start with no blueprint to write. Created through the API like any other
 * blueprint; one that exists already (maybe changed by its operator) is left as it is.
 */
import type { InvokeApi } from './http-server.ts';

export const LOCAL_WORKING_COPY_BLUEPRINT = {
  id: 'local-wc',
  type: 'working-copy',
  resourceType: 'working-copy',
  description: "Git working copies on hosts of the 'local' blueprint",
  // One per host of `local` at most (its maxResources), each serving one lease at a time.
  limits: { maxResources: 4, leasesPerResource: 1, idleTtlSeconds: 1800, idleGraceSeconds: 30 },
  config: { host: { type: 'host', blueprintIds: ['local'] } },
};

export async function ensureLocalWorkingCopyBlueprint(invokeApi: InvokeApi): Promise<void> {
  const request = (method: string, url: string, body = '') =>
    invokeApi({
      method,
      url,
      rawHeaders: ['content-type', 'application/json'],
      body,
      sourceIp: '127.0.0.1',
    });
  const { id } = LOCAL_WORKING_COPY_BLUEPRINT;
  const existing = await request('GET', `/v1/blueprints/${id}`);
  if (existing.statusCode === 200) return;
  if (existing.statusCode !== 404) {
    throw new Error(
      `reading blueprint '${id}' failed: HTTP ${existing.statusCode} ${existing.body}`,
    );
  }
  const created = await request(
    'POST',
    '/v1/blueprints',
    JSON.stringify(LOCAL_WORKING_COPY_BLUEPRINT),
  );
  // 409: created meanwhile (another start racing this one); fine.
  if (created.statusCode !== 201 && created.statusCode !== 200 && created.statusCode !== 409) {
    throw new Error(
      `creating blueprint '${id}' failed: HTTP ${created.statusCode} ${created.body}`,
    );
  }
}
