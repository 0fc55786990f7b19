/**
 * The names norn gives containers on a Docker host. App and process names are DNS labels
 * ([a-z0-9-]), so they never contain "." or "_", which Docker names allow: the dots of a name
 * split it back into exactly the app and process it was made from, and "_" marks the kind of a
 * one-off container, which no process name can look like. (The old `norn-<app>-<process>-<i>`
 * was ambiguous: app probe-nc with process b-web and app probe-nc-b with process web were both
 * norn-probe-nc-b-web-0, and the second deploy replaced the first app's container.)
 *
 * Names only help to find a container; what a container is, and whose, its labels say
 * (runtime.ts LABELS), and norn never touches a container whose norn.app label names
 * another app.
 */

/**
 * A long-running replica: `norn.<app>.<process>.<replica>`, or with `.b` after it. A rolling
 * deploy starts a slot's new container next to the old one before the old one goes, so the two
 * take turns between these two names (`alt`).
 */
export const replicaName = (app: string, process: string, replica: number, alt = false) =>
  `norn.${app}.${process}.${replica}${alt ? '.b' : ''}`;

/** The ingress proxy's route of a process (one Caddy server): `norn.<app>.<process>`. */
export const routeId = (app: string, process: string) => `norn.${app}.${process}`;

/** What every route id of `app` starts with (app names have no dots: no other app's matches). */
export const routePrefix = (app: string) => `norn.${app}.`;

/** The deploy's one-off test container: `norn.<app>.test_<run id>` (one per run). */
export const testContainerName = (app: string, runId: string) => `norn.${app}.test_${runId}`;

/** Docker names allow [a-zA-Z0-9_.-]; scheduler job ids look like `repeat:app.proc:1716…`. */
const sanitize = (id: string) => id.replace(/[^a-zA-Z0-9_.-]/g, '-');

/** A scheduled process's one-off container for one job: `norn.<app>.<process>.cron_<job id>`. */
export const cronContainerName = (app: string, process: string, jobId: string) =>
  `norn.${app}.${process}.cron_${sanitize(jobId)}`;
