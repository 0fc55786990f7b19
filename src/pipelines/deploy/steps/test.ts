/**
 * Deploy step `test`: runs the app's `build.test` command inside the image just built, as a
 * one-off container, and fails the run with the tail of its output when it exits non-zero.
 */
import { NornError } from '../../../shared/errors.js';
import { skipStep, type StepContext } from '../../../queues/pipeline.js';
import { deployStep } from '../types.js';
import { testContainerName } from '../../../targets/docker/names.js';
import { pinnedSpec, requireDocker } from '../workspace.js';

/** A test command running longer than this is killed and fails the run (TIMEOUT). */
export const TEST_TIMEOUT_MS = 15 * 60_000;
const TAIL_LINES = 20;

// One per run (names.ts), so a re-run replaces a leftover of a killed try.
export { testContainerName } from '../../../targets/docker/names.js';

/** Labels of the test container, also how cleanup finds a leftover (with the driver's `norn.one-off`). */
export const testContainerLabels = (ctx: Pick<StepContext, 'run'>, commitSha: string) => ({
  'norn.app': ctx.run.appId,
  'norn.process': 'test',
  'norn.deployment': ctx.run.id,
  'norn.commit': commitSha,
});

export const test = deployStep('test', {
  /**
   * Skipped without `build.test`. Otherwise `/bin/sh -c <test>` in the built image, its output
   * streamed into the step log; the container is removed afterwards whatever happened (the
   * driver does that on exit, timeout and cancel alike). A non-zero exit is final, not retried.
   */
  async run(ctx, services) {
    const command = pinnedSpec(ctx).build?.test;
    if (command === undefined || command === null || command === '')
      return skipStep('no build.test configured');
    if (typeof command !== 'string')
      throw new NornError('SPEC_INVALID', 'build.test must be a shell command (a string)');
    const docker = requireDocker(services, 'test');
    const built = await ctx.output('build');
    const cloned = await ctx.output('clone');
    if (!built || !cloned)
      throw new NornError(
        'INTERNAL',
        `run ${ctx.run.id} has no recorded build output; the build step must run first`,
      );

    ctx.log(`running build.test in ${built.imageRef}`);
    const { exitCode, tail } = await docker.runToCompletion({
      image: built.imageRef,
      cmd: ['/bin/sh', '-c', command],
      name: testContainerName(ctx.run.appId, ctx.run.id),
      labels: testContainerLabels(ctx, cloned.commitSha),
      signal: ctx.signal,
      onLine: ctx.log,
      timeoutMs: TEST_TIMEOUT_MS,
    });
    const last = tail.slice(-TAIL_LINES);
    if (exitCode !== 0) {
      throw new NornError(
        'STEP_FAILED',
        `build.test exited with ${exitCode}:\n${last.join('\n')}`,
        { details: { exitCode, tail: last } },
      );
    }
    ctx.log('build.test passed');
    return { exitCode, tail: last };
  },
});
