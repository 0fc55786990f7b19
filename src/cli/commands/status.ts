/** norn status [app]: the fleet at a glance, or one app's lease, queue and recent deployments. */
import type { AppDetail, AppList, DeploymentList, Run } from '../../shared/api/index.js';
import type { CliContext } from '../context.js';
import { seg } from '../context.js';
import { EXIT } from '../errors.js';
import { formatAge, formatDuration, oneLine, table } from '../render.js';

type Deployment = Run;

const ref = (d: { params?: Record<string, unknown> }) =>
  typeof d.params?.ref === 'string' ? d.params.ref : '-';
const when = (d: Deployment) => d.finishedAt ?? d.startedAt ?? d.createdAt;

export async function status(ctx: CliContext): Promise<number> {
  return ctx.positionals[0] ? appStatus(ctx, ctx.positionals[0]) : fleetStatus(ctx);
}

async function fleetStatus(ctx: CliContext): Promise<number> {
  const { apps } = await ctx.api.get<AppList>('api/apps');
  const latest = await Promise.all(
    apps.map(async (a) => {
      const { deployments } = await ctx.api.get<DeploymentList>(
        `api/apps/${seg(a.id)}/deployments?limit=1`,
      );
      return { app: a.id, deployment: deployments[0] ?? null };
    }),
  );
  if (ctx.values.json) {
    ctx.out.json({ apps: latest });
    return EXIT.ok;
  }
  if (!apps.length) {
    ctx.out.line('no apps registered');
    return EXIT.ok;
  }
  const rows = latest.map(({ app, deployment: d }) =>
    d ? [app, d.status, ref(d), formatAge(when(d)), d.id] : [app, 'never deployed', '-', '-', '-'],
  );
  ctx.out.line(table(['APP', 'STATUS', 'REF', 'WHEN', 'DEPLOYMENT'], rows));
  return EXIT.ok;
}

async function appStatus(ctx: CliContext, app: string): Promise<number> {
  const [{ lease }, { deployments }] = await Promise.all([
    ctx.api.get<AppDetail>(`api/apps/${seg(app)}`),
    ctx.api.get<DeploymentList>(`api/apps/${seg(app)}/deployments?limit=5`),
  ]);
  if (ctx.values.json) {
    ctx.out.json({ app, lease, deployments });
    return EXIT.ok;
  }
  const { out } = ctx;
  out.line(`app ${app}`);
  const h = lease.holder;
  out.line(
    h
      ? `held by deployment ${h.deploymentId} (${h.pipeline}, ${h.status}) on worker ${h.holder}; heartbeat ${formatAge(h.heartbeatAt)}, lease expires ${formatAge(h.expiresAt)}`
      : 'idle: no run holds the app',
  );
  if (lease.waiting.length) {
    out.line(`waiting (${lease.waiting.length}, in the order they will run):`);
    for (const w of lease.waiting)
      out.line(
        `  ${w.deploymentId}  ${w.pipeline ?? ''}  ref ${ref(w)}  requested ${formatAge(w.requestedAt)}`,
      );
  } else {
    out.line('waiting: none');
  }
  out.line('');
  if (!deployments.length) {
    out.line('no deployments yet');
    return EXIT.ok;
  }
  out.line('recent deployments:');
  out.line(
    table(
      ['DEPLOYMENT', 'STATUS', 'REF', 'WHEN', 'TOOK', 'FAILED AT'],
      deployments.map((d) => [
        d.id,
        d.status,
        ref(d),
        formatAge(when(d)),
        took(d),
        d.failedStep ? `${d.failedStep}: ${oneLine(d.error)}` : d.error ? oneLine(d.error) : '',
      ]),
    ),
  );
  return EXIT.ok;
}

function took(d: Deployment): string {
  if (!d.startedAt) return '-';
  const end = d.finishedAt ? new Date(d.finishedAt).getTime() : Date.now();
  return formatDuration(end - new Date(d.startedAt).getTime());
}
