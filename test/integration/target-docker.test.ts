/**
 * The target contract (test/support/targets/contract.ts) against the docker target: a real
 * dockerd, busybox web images FROM scratch pushed to the open registry, and an in-memory set of
 * schedules (the BullMQ schedulers are the deploy runtime tests' business).
 */
import { createDockerDriver } from '../../src/shared/drivers/docker.js';
import { createDockerTarget } from '../../src/targets/docker.js';
import { replicaName } from '../../src/targets/docker/names.js';
import type { CronScheduler } from '../../src/targets/index.js';
import {
  appName,
  buildWebImages,
  freePorts,
  removeAppContainers,
} from '../support/deploy-runtime/fixtures.js';
import { OPEN_REGISTRY, TEST_LABELS, dockerUp } from '../support/docker/engine.js';
import { targetContract } from '../support/targets/contract.js';

/** Schedules kept in memory, as the target sees them through CronScheduler. */
function memoryCron(): CronScheduler {
  const ids = new Set<string>();
  const of = (app: string) => [...ids].filter((id) => id.startsWith(`${app}.`));
  return {
    async upsert({ appId, process }) {
      ids.add(`${appId}.${process}`);
      return `${appId}.${process}`;
    },
    async prune(appId, keep) {
      const gone = of(appId).filter((id) => !keep.includes(id));
      for (const id of gone) ids.delete(id);
      return gone;
    },
    list: async (appId) => of(appId),
  };
}

targetContract('docker', async () => {
  await dockerUp();
  const docker = createDockerDriver({ registryUrl: OPEN_REGISTRY });
  const built = await buildWebImages(docker, appName('norn-tc'), { 'norn.test.target': '1' });
  const owners: string[] = [];
  return {
    target: createDockerTarget({ docker, cron: memoryCron(), pollMs: 100 }),
    rollsOutInApply: true,
    images: { v1: built.v1, v2: built.v2 },
    freePorts,
    async fetchBody({ host, port }) {
      try {
        const res = await fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(1_000) });
        const text = (await res.text()).trim();
        return res.ok ? text : `http ${res.status}`;
      } catch {
        return 'down';
      }
    },
    async plantForeign(app, process, owner) {
      owners.push(owner);
      const name = replicaName(app, process, 0);
      await docker.run({
        name,
        image: built.v1,
        cmd: ['/bin/sh', '-c', "trap 'exit 0' TERM; sleep 600 & wait"],
        labels: { 'norn.app': owner, ...TEST_LABELS },
      });
      return async () => {
        const state = await docker.inspectState(name);
        return state?.running === true && state.labels['norn.app'] === owner;
      };
    },
    async close(apps) {
      await removeAppContainers([...apps, ...owners]);
      for (const ref of Object.values(built)) await docker.removeImage(ref).catch(() => {});
    },
  };
});
