/**
 * What the contract suite needs to run `working-copy` without the engine: the plug-in's two
 * ports (`ctx.leases`, `ctx.commandsOn`) served by real local-host hosts in the test's data dir,
 * and a real bare repository to clone. A host lease is active as soon as it is requested (the
 * engine's waiting is covered by test/engine/working-copy.test.ts).
 */
import { localHostBlueprint } from '../../lambdas/blueprints/local-host/index.ts';
import type { ChildLease } from '../../lambdas/core/blueprint.ts';
import { StateConflictError } from '../../lambdas/core/errors.ts';
import type { Lease, Resource } from '../../lambdas/core/model.ts';
import { makeRepo } from '../support/git-repos.ts';
import { configuredBlueprint, makeLease, makeResource, type TestContext } from './support.ts';

const hostBlueprint = configuredBlueprint(localHostBlueprint, {}, { id: 'contract-hosts' });

/** A repository with one commit on main, made once per test file. */
let repoUrl: string | undefined;
export function contractRepoUrl(): string {
  if (!repoUrl) {
    const repo = makeRepo('contract');
    repo.commit('first', { 'README.md': 'contract\n' });
    repo.push('main');
    repoUrl = repo.url;
  }
  return repoUrl;
}

/** The lease the contract suite hands a working copy: one repository, its main. */
export function workingCopyContractLease(): Partial<Lease> {
  return {
    type: 'working-copy',
    workingCopy: { repositories: [{ url: contractRepoUrl(), ref: 'main', directory: 'r' }] },
  };
}

/** Serve ctx.leases and ctx.commandsOn with local-host hosts; returns the live host leases. */
export function wireLocalHostLeases(ctx: TestContext): {
  liveFor(parent: Resource): number;
} {
  const leases = new Map<string, { child: ChildLease; parentId: string; host: Resource }>();
  ctx.leases = {
    async request(parent, request) {
      const id = `lease-${parent.id}-${request.key}`;
      const known = leases.get(id);
      if (known) return { ...known.child };
      const host = makeResource(hostBlueprint, { id: `res-host-${parent.id}` });
      const step = await localHostBlueprint.activateResource(ctx, hostBlueprint, host);
      const child: ChildLease = { id, status: 'active', resourceId: host.id };
      leases.set(id, {
        child,
        parentId: parent.id,
        host: { ...host, status: 'active', data: { ...host.data, ...step.data } },
      });
      return { ...child };
    },
    async get(id) {
      const known = leases.get(id);
      return known ? { ...known.child } : undefined;
    },
    async release(id) {
      const known = leases.get(id);
      if (known?.child.status !== 'active') return;
      known.child = { ...known.child, status: 'destroyed', endReason: 'released by its parent' };
      await localHostBlueprint.destroyResource(ctx, hostBlueprint, known.host);
    },
  };
  ctx.commandsOn = async (id) => {
    const known = leases.get(id);
    if (known?.child.status !== 'active') {
      throw new StateConflictError(`lease ${id} is ${known?.child.status ?? 'missing'}`);
    }
    return localHostBlueprint.command!(ctx, hostBlueprint, known.host, makeLease({ id }));
  };
  return {
    liveFor: (parent) =>
      [...leases.values()].filter((l) => l.parentId === parent.id && l.child.status === 'active')
        .length,
  };
}
