/**
 * What the forge and teardown steps do to the cluster, one object at a time: create it unless it
 * exists (an existing one is success, said so), write it over (Secrets), delete it (already gone
 * is success; never a PersistentVolumeClaim), and the cloudflared ConfigMap and Deployment
 * (read-modify-replace on their resourceVersion, a stale one read again). Objects are the
 * kubernetes target's (src/targets/kubernetes/objects.ts): same builders, names and labels, so a
 * later deploy on the target takes them over.
 */
import type * as k8s from '@kubernetes/client-node';
import { NornError } from '../../shared/errors.js';
import { apiMessage, statusOf, type KubeConnection } from '../../targets/kubernetes/connection.js';
import { foreignOwner } from '../../targets/kubernetes/objects.js';
import {
  ensureObject,
  kindApi,
  readObject,
  writeObject,
  type Written,
} from '../../targets/kubernetes.js';

const strict = { fieldValidation: 'Strict' } as const;

function failed(what: string, err: unknown): Error {
  if (statusOf(err) !== undefined)
    return new NornError('STEP_FAILED', `${what}: ${apiMessage(err)}`, {
      cause: err,
      details: { status: statusOf(err) },
    });
  return err as Error;
}

// Creating an object unless it is there, and writing one over: the target's own calls.
export { ensureObject, writeObject };

/** Deletes the app's object; 'gone' when it was not there. Another app's object is refused. */
export async function deleteObject(
  c: KubeConnection,
  kind: Written,
  app: string,
  name: string,
  namespace: string,
  signal: AbortSignal,
): Promise<'deleted' | 'gone'> {
  const current = await readObject(c, { kind, name, namespace }, signal);
  if (!current) return 'gone';
  const owner = foreignOwner(current, app);
  if (owner)
    throw new NornError(
      'CONFLICT',
      `${kind} ${namespace}/${name} belongs to ${owner}, not to ${app}; teardown leaves it alone`,
      { details: { kind, namespace, name } },
    );
  const what = `deleting ${kind} ${namespace}/${name}`;
  try {
    await c.call(what, () => kindApi(c, kind).remove(name, namespace), signal);
    return 'deleted';
  } catch (err) {
    if (statusOf(err) === 404) return 'gone';
    throw failed(what, err);
  }
}

export const CONFIG_KEY = 'config.yaml';

/** ConfigMap `namespace/name`, undefined when it is absent (cloudflared is not deployed). */
async function readConfigMap(
  c: KubeConnection,
  where: { namespace: string; name: string },
  signal: AbortSignal,
): Promise<k8s.V1ConfigMap | undefined> {
  const { namespace, name } = where;
  const what = `reading ConfigMap ${namespace}/${name}`;
  try {
    return await c.call(what, () => c.core.readNamespacedConfigMap({ name, namespace }), signal);
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw failed(what, err);
  }
}

/** Key `config.yaml` of ConfigMap `namespace/name`; undefined when the ConfigMap is absent. */
export async function readConfigText(
  c: KubeConnection,
  where: { namespace: string; name: string },
  signal: AbortSignal,
): Promise<string | undefined> {
  const cm = await readConfigMap(c, where, signal);
  return cm && configText(cm, where);
}

function configText(cm: k8s.V1ConfigMap, where: { namespace: string; name: string }): string {
  const text = cm.data?.[CONFIG_KEY];
  if (text === undefined)
    throw new NornError(
      'STEP_FAILED',
      `ConfigMap ${where.namespace}/${where.name} has no key ${CONFIG_KEY} (cloudflared's config)`,
    );
  return text;
}

/**
 * Edits key `config.yaml` of ConfigMap `namespace/name` with `edit` (pure: text → text and
 * whether it changed). Undefined when the ConfigMap is absent (cloudflared is not deployed).
 */
export async function editConfigMap(
  c: KubeConnection,
  where: { namespace: string; name: string },
  edit: (text: string) => { text: string; changed: boolean },
  signal: AbortSignal,
): Promise<{ changed: boolean } | undefined> {
  const { namespace, name } = where;
  const what = `updating ConfigMap ${namespace}/${name}`;
  for (let attempt = 1; ; attempt++) {
    const cm = await readConfigMap(c, where, signal);
    if (!cm) return undefined;
    const text = configText(cm, where);
    const next = edit(text);
    if (!next.changed) return { changed: false };
    const body: k8s.V1ConfigMap = { ...cm, data: { ...cm.data, [CONFIG_KEY]: next.text } };
    try {
      await c.call(
        what,
        () => c.core.replaceNamespacedConfigMap({ name, namespace, body, ...strict }),
        signal,
      );
      return { changed: true };
    } catch (err) {
      if (statusOf(err) === 409 && attempt < 3) continue; // written in between: edit it again
      throw failed(what, err);
    }
  }
}

export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';

/** How long a restart of the cluster's cloudflared waits for its rollout (forge, teardown, deploy). */
export const CLOUDFLARED_RESTART_TIMEOUT_MS = 5 * 60_000;

/**
 * A rolling restart of Deployment `namespace/name`, as `kubectl rollout restart` does it (the
 * pod template's restartedAt annotation), then waits until its rollout is complete. Undefined
 * when the Deployment is absent.
 */
export async function restartDeployment(
  c: KubeConnection,
  where: { namespace: string; name: string },
  o: { signal: AbortSignal; timeoutMs: number; log: (line: string) => void },
): Promise<{ restartedAt: string } | undefined> {
  const { namespace, name } = where;
  const restartedAt = new Date().toISOString();
  let generation: number | undefined;
  for (let attempt = 1; ; attempt++) {
    let d: k8s.V1Deployment;
    try {
      d = await c.call(
        `reading Deployment ${namespace}/${name}`,
        () => c.apps.readNamespacedDeployment({ name, namespace }),
        o.signal,
      );
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw failed(`reading Deployment ${namespace}/${name}`, err);
    }
    const template = d.spec!.template;
    template.metadata = {
      ...template.metadata,
      annotations: { ...template.metadata?.annotations, [RESTARTED_AT]: restartedAt },
    };
    try {
      const written = await c.call(
        `restarting Deployment ${namespace}/${name}`,
        () => c.apps.replaceNamespacedDeployment({ name, namespace, body: d, ...strict }),
        o.signal,
      );
      generation = written.metadata?.generation;
      break;
    } catch (err) {
      if (statusOf(err) === 409 && attempt < 3) continue;
      throw failed(`restarting Deployment ${namespace}/${name}`, err);
    }
  }
  o.log(`Deployment ${namespace}/${name} restarted at ${restartedAt}; waiting for its rollout`);
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    const d = await c.call(
      `reading Deployment ${namespace}/${name}`,
      () => c.apps.readNamespacedDeployment({ name, namespace }),
      o.signal,
    );
    const want = d.spec?.replicas ?? 1;
    const s = d.status ?? {};
    const progressing = s.conditions?.find((x) => x.type === 'Progressing');
    if (progressing?.reason === 'ProgressDeadlineExceeded')
      throw new NornError(
        'STEP_FAILED',
        `the rollout of Deployment ${namespace}/${name} exceeded its progress deadline: ${progressing.message ?? ''}`,
      );
    if (
      (s.observedGeneration ?? 0) >= (generation ?? 0) &&
      (s.updatedReplicas ?? 0) >= want &&
      (s.availableReplicas ?? 0) >= want &&
      (s.replicas ?? 0) <= want
    )
      return { restartedAt };
    if (Date.now() > deadline)
      throw new NornError(
        'TIMEOUT',
        `the rollout of Deployment ${namespace}/${name} did not finish within ${o.timeoutMs} ms (updated ${s.updatedReplicas ?? 0}, available ${s.availableReplicas ?? 0} of ${want})`,
      );
    if (o.signal.aborted)
      throw new NornError('CANCELLED', `waiting for ${namespace}/${name} was cancelled`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
