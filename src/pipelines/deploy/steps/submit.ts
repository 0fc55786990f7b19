/**
 * Deploy step `submit`: records the release and puts it on its target. Docker target: decrypts the
 * repository's SOPS secrets file into the containers' environment, replaces the previous release's
 * containers one replica at a time (each answering its health path before the next), turns
 * scheduled processes into job schedulers, and puts the previous release back if that fails.
 *
 * Secret values never leave: the release row keeps the ENCRYPTED file, and messages and log lines
 * are scrubbed of the decrypted values.
 */
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NornError } from '../../../shared/errors.js';
import { redactText } from '../../../shared/exec.js';
import {
  decryptSecretsEnv,
  sopsFormatForPath,
  type SopsFormat,
} from '../../../shared/secrets/sops.js';
import type { Infraspec } from '../../../shared/spec/infraspec.js';
import type { StepContext, StepDefinition } from '../../../queues/pipeline.js';
import {
  endFailedRelease,
  parseSpec,
  requireDocker,
  rollOut,
  scrubbed,
  syncSchedulers,
  type RuntimeCall,
} from '../docker-runtime.js';
import { ensureSource } from '../workspace.js';
import type { BuildOutput, CloneOutput, DeployServices, SubmitOutput } from '../types.js';

/** Where an app keeps its secrets, in the order they are looked for. */
export const SECRETS_FILES = [
  'secrets.enc.yaml',
  'secrets.enc.yml',
  'secrets.enc.json',
  'secrets.enc.env',
] as const;

interface SecretsFile {
  name: string;
  text: string;
  format: SopsFormat;
}

/** The repository's secrets file, if any; a symlink is refused (it could point outside the clone). */
async function findSecretsFile(dir: string): Promise<SecretsFile | undefined> {
  for (const name of SECRETS_FILES) {
    const path = join(dir, name);
    const stat = await lstat(path).catch(() => undefined);
    if (!stat) continue;
    if (!stat.isFile())
      throw new NornError(
        'SECRETS_INVALID',
        `${name} in the repository must be a regular file, not a link or directory`,
      );
    return { name, text: await readFile(path, 'utf8'), format: sopsFormatForPath(name) };
  }
  return undefined;
}

/** Decrypts the secrets file (MAC-checked) and checks every key spec.secrets declares is there. */
async function loadSecrets(ctx: StepContext, s: DeployServices, spec: Infraspec) {
  const file = await findSecretsFile(await ensureSource(ctx, s));
  const declared = spec.secrets ?? [];
  if (!file) {
    if (declared.length) {
      throw new NornError(
        'SECRETS_INVALID',
        `spec.secrets declares ${declared.join(', ')} but the repository has no ${SECRETS_FILES[0]}`,
      );
    }
    return { file, values: {} as Record<string, string> };
  }
  const values = await decryptSecretsEnv(file.text, file.format, await s.sopsKeys());
  const missing = declared.filter((key) => !Object.hasOwn(values, key));
  if (missing.length) {
    throw new NornError(
      'SECRETS_INVALID',
      `${file.name} lacks keys declared in spec.secrets: ${missing.join(', ')}`,
      {
        details: { missing },
      },
    );
  }
  ctx.log(`decrypted ${file.name} (${Object.keys(values).length} keys)`);
  return { file, values };
}

/** Outputs of earlier steps that may be absent or skipped (stored as `{ skipped }`). */
async function optionalOutputs(ctx: StepContext) {
  const migrate = await ctx.output<{ applied?: unknown }>('migrate');
  const snapshot = await ctx.output<{ ts?: unknown }>('snapshot');
  return {
    migrationsApplied: Array.isArray(migrate?.applied) ? (migrate.applied as string[]) : [],
    snapshotTs: typeof snapshot?.ts === 'string' ? snapshot.ts : null,
  };
}

export const submit: StepDefinition<DeployServices> = {
  name: 'submit',
  async run(ctx, s): Promise<SubmitOutput> {
    const spec = parseSpec(ctx.run.spec);
    const target = spec.target ?? 'docker';
    if (target !== 'docker')
      throw new NornError('UNAVAILABLE', `target ${target} is not implemented yet`);
    const docker = requireDocker(s, 'submit');
    const cloned = await ctx.output<CloneOutput>('clone');
    const built = await ctx.output<BuildOutput>('build');
    if (!cloned?.commitSha || !built?.imageRef)
      throw new NornError('STEP_FAILED', 'submit needs the outputs of the clone and build steps');
    const app = ctx.run.appId;

    const earlier = await s.releases.byDeployment(ctx.run.id);
    if (earlier && (earlier.status === 'failed' || earlier.status === 'rolled_back')) {
      throw new NornError(
        'STEP_FAILED',
        earlier.error ?? `release ${earlier.id} already ${earlier.status}`,
      );
    }
    const secrets = await loadSecrets(ctx, s, spec);
    const redact = Object.values(secrets.values);
    const previous = await s.releases.active(app);
    const release = await s.releases.upsertDeploying({
      appId: app,
      deploymentId: ctx.run.id,
      target,
      imageRef: built.imageRef,
      commitSha: cloned.commitSha,
      digest: built.digest ?? null,
      spec: spec as unknown as Record<string, unknown>,
      secretsEnc: secrets.file?.text ?? null,
      secretsFormat: secrets.file?.format ?? null,
      ...(await optionalOutputs(ctx)),
    });
    ctx.log(
      `release ${release.id}: ${built.imageRef}${previous ? `, replacing release ${previous.id}` : ''}`,
    );

    const call: RuntimeCall = {
      docker,
      signal: ctx.signal,
      pollMs: s.healthPollMs,
      redact,
      log: (line) => ctx.log(redactText(line, redact)),
    };
    let touched = false;
    try {
      const containers = await rollOut(call, {
        app,
        release,
        spec,
        secrets: secrets.values,
        onTouch: () => {
          touched = true;
        },
      });
      const schedulers = await syncSchedulers(s, app, spec, release.id);
      return {
        releaseId: release.id,
        previousReleaseId: previous?.id ?? null,
        containers,
        schedulers,
      };
    } catch (err) {
      const clean = scrubbed(err, redact);
      // Stopped (cancel, shutdown): a shutdown hands the step to another worker, which re-runs it
      // from here, so the release stays `deploying` and nothing is rolled back.
      if (ctx.signal.aborted) throw clean;
      if (!touched) {
        await s.releases.markEnded(ctx.run.id, 'failed', clean.message);
        throw clean;
      }
      const message = await endFailedRelease(s, call, {
        app,
        runId: ctx.run.id,
        release,
        spec,
        reason: clean.message,
      });
      throw new NornError('STEP_FAILED', message, { cause: clean });
    }
  },
};
