/**
 * The docker driver against a real dockerd and two real registries (open on :5000, htpasswd on
 * :5001), all brought up by script/docker-up. Images are busybox FROM scratch: nothing is pulled.
 */
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDockerDriver,
  httpProbe,
  type DockerDriver,
} from '../../src/shared/drivers/docker.js';
import { isNornError } from '../../src/shared/errors.js';
import {
  authRegistry,
  AUTH_USER,
  OPEN_REGISTRY,
  TEST_LABELS,
  authRegistryPassword,
  busyboxContext,
  dockerUp,
  fakeSha,
  freePort,
  removeTestArtifacts,
  uniqueName,
  waitFor,
  type BuildContext,
} from '../support/docker/engine.js';

const engine = new Docker();
const created: string[] = []; // image tags to remove afterwards
const contexts: BuildContext[] = [];
let open: DockerDriver;
let password: string;
let webImage: string; // serves /www with httpd
let otherImage: string; // same server, different content

async function build(
  driver: DockerDriver,
  app: string,
  steps: string[],
  files?: Record<string, string>,
  sha = fakeSha(),
) {
  const ctx = await busyboxContext(steps, files);
  contexts.push(ctx);
  const tag = driver.imageRef(app, sha);
  created.push(tag);
  const lines: string[] = [];
  const result = await driver.build({
    contextDir: ctx.dir,
    dockerfile: 'Dockerfile',
    tag,
    labels: { ...TEST_LABELS },
    onLine: (l) => lines.push(l),
  });
  return { tag, sha, lines, ...result };
}

const rejection = async (p: Promise<unknown>) => {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!isNornError(err)) throw new Error(`expected a NornError, got ${String(err)}`);
  return err;
};

const WEB_STEPS = (body: string) => [
  `RUN mkdir /www && echo ${body} > /www/index.html`,
  'CMD ["/bin/busybox", "sleep", "3600"]',
];

beforeAll(async () => {
  await dockerUp();
  password = await authRegistryPassword();
  open = createDockerDriver({ registryUrl: OPEN_REGISTRY });
  await open.ping();
  webImage = (await build(open, 'norn-test-web', WEB_STEPS('first'))).tag;
  otherImage = (await build(open, 'norn-test-web', WEB_STEPS('second'))).tag;
}, 300_000);

afterAll(async () => {
  await removeTestArtifacts(created);
  for (const ctx of contexts) await ctx.remove();
});

describe('engine and image references', () => {
  it('pings the engine, and says UNAVAILABLE for a socket with no engine', async () => {
    await expect(open.ping()).resolves.toBeUndefined();
    const none = createDockerDriver({
      registryUrl: OPEN_REGISTRY,
      socketPath: '/tmp/norn-no-such-docker.sock',
    });
    const err = await rejection(none.ping());
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toMatch(/no Docker engine answers at \/tmp\/norn-no-such-docker\.sock/);
  });

  it('names images registry/app:sha and refuses names docker would reject', () => {
    expect(open.imageRef('web', 'abc123')).toBe('127.0.0.1:5000/web:abc123');
    expect(
      createDockerDriver({ registryUrl: 'http://127.0.0.1:5000/team/' }).imageRef('web', 'abc'),
    ).toBe('127.0.0.1:5000/team/web:abc');
    expect(() => open.imageRef('Web App', 'abc')).toThrow(/cannot name an image/);
    expect(() => open.imageRef('web', 'no/slash')).toThrow(/not a valid image tag/);
  });
});

describe('build', () => {
  it('builds FROM scratch with labels, streams its output and honours .dockerignore', async () => {
    const steps = [
      'COPY . /ctx',
      'RUN test -e /ctx/keep/file.txt && test ! -e /ctx/ignored && test ! -e /ctx/secret.txt',
    ];
    const files = {
      '.dockerignore': 'ignored\nsecret.txt\n',
      'keep/file.txt': 'x',
      'ignored/a.txt': 'y',
      'secret.txt': 'z',
    };
    const { tag, imageId, lines } = await build(open, 'norn-test-ctx', steps, files);
    expect(imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(lines.some((l) => l.includes('COPY . /ctx'))).toBe(true);
    const info = await engine.getImage(tag).inspect();
    expect(info.Id).toBe(imageId);
    expect(info.Config.Labels).toMatchObject(TEST_LABELS);
  });

  it('fails with STEP_FAILED and the output tail when a step fails', async () => {
    const err = await rejection(build(open, 'norn-test-bad', ['RUN echo about-to-fail && exit 7']));
    expect(err.code).toBe('STEP_FAILED');
    expect(err.message).toContain('about-to-fail');
    expect(err.message).toMatch(/returned a non-zero code: 7/);
  });

  it('stops a running build on abort and leaves no image with that tag', async () => {
    const ctx = await busyboxContext(['RUN sleep 30']);
    contexts.push(ctx);
    const tag = open.imageRef('norn-test-abort', fakeSha());
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort('cancelled by test'), 1_000);
    const err = await rejection(
      open.build({
        contextDir: ctx.dir,
        dockerfile: 'Dockerfile',
        tag,
        labels: { ...TEST_LABELS },
        signal: controller.signal,
      }),
    );
    expect(err.code).toBe('CANCELLED');
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(engine.getImage(tag).inspect()).rejects.toMatchObject({ statusCode: 404 });
    // The engine kills the step's container once the connection is gone.
    const sleeping = async () =>
      (await engine.listContainers({ all: true })).some((c) => c.Command.includes('sleep 30'));
    expect(await waitFor(async () => !(await sleeping()), 5_000)).toBe(true);
  });
});

describe('push and registryHasImage', () => {
  it('pushes to the open registry and then finds the tag there', async () => {
    const app = 'norn-test-web';
    const sha = webImage.split(':').pop()!;
    expect(await open.registryHasImage(app, sha)).toBe(false);
    const { digest } = await open.push({ tag: webImage });
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await open.registryHasImage(app, sha)).toBe(true);
    expect(await open.registryHasImage(app, fakeSha())).toBe(false);
  });

  it('refuses a wrong password clearly, without ever showing it', async () => {
    const wrongPassword = `wrong-${fakeSha()}`;
    const wrong = createDockerDriver({
      registryUrl: authRegistry(),
      registryAuth: { username: AUTH_USER, password: wrongPassword },
    });
    const { tag, sha } = await build(wrong, 'norn-test-auth', WEB_STEPS('auth'));
    const lines: string[] = [];
    const pushErr = await rejection(wrong.push({ tag, onLine: (l) => lines.push(l) }));
    expect(pushErr.code).toBe('UNAUTHORIZED');
    expect(pushErr.message).toMatch(
      /registry 127\.0\.0\.1:5001 refused the credentials of user "norn"/,
    );
    const lookupErr = await rejection(wrong.registryHasImage('norn-test-auth', sha));
    expect(lookupErr.code).toBe('UNAUTHORIZED');
    const anonymous = createDockerDriver({ registryUrl: authRegistry() });
    expect((await rejection(anonymous.registryHasImage('norn-test-auth', sha))).code).toBe(
      'UNAUTHORIZED',
    );
    const everything = [
      pushErr.message,
      JSON.stringify(pushErr.details),
      lookupErr.message,
      ...lines,
    ].join('\n');
    expect(everything).not.toContain(wrongPassword);
  });

  it('pushes with the right password, and a later run pulls the image back with it', async () => {
    const authed = createDockerDriver({
      registryUrl: authRegistry(),
      registryAuth: { username: AUTH_USER, password },
    });
    const { tag, sha, imageId } = await build(authed, 'norn-test-auth', WEB_STEPS('auth'));
    const lines: string[] = [];
    const { digest } = await authed.push({ tag, onLine: (l) => lines.push(l) });
    expect(digest).toMatch(/^sha256:/);
    expect(lines.join('\n')).not.toContain(password);
    expect(await authed.registryHasImage('norn-test-auth', sha)).toBe(true);
    expect(await authed.registryHasImage('norn-test-auth', fakeSha())).toBe(false);

    await authed.removeImage(tag); // only in the registry now: run() must pull it with the credentials
    await expect(engine.getImage(tag).inspect()).rejects.toMatchObject({ statusCode: 404 });
    const name = uniqueName('norn-test-pulled');
    await authed.run({ name, image: tag, labels: { ...TEST_LABELS } });
    expect((await engine.getImage(tag).inspect()).Id).toBe(imageId);
    await authed.stopAndRemove(name, { timeoutSec: 1 });
  });
});

describe('containers', () => {
  const serve = (port: number) => [
    '/bin/busybox',
    'httpd',
    '-f',
    '-p',
    `127.0.0.1:${port}`,
    '-h',
    '/www',
  ];

  it('runs on the host network, idempotently by name, and replaces on a new image', async () => {
    const port = await freePort();
    const name = uniqueName('norn-test-http');
    const url = `http://127.0.0.1:${port}/`;
    const first = await open.run({
      name,
      image: webImage,
      cmd: serve(port),
      labels: { ...TEST_LABELS, 'norn.app': 'web' },
      ports: [port],
      stopTimeoutSec: 1,
    });
    expect(await waitFor(async () => (await httpProbe(url, 1_000)).ok, 10_000)).toBe(true);
    expect(await httpProbe(url, 1_000)).toEqual({ ok: true, status: 200 });
    expect(await (await fetch(url)).text()).toBe('first\n');

    const again = await open.run({
      name,
      image: webImage,
      cmd: serve(port),
      labels: { ...TEST_LABELS, 'norn.app': 'web' },
      ports: [port],
      stopTimeoutSec: 1,
    });
    expect(again.id).toBe(first.id);
    await engine.getContainer(name).stop({ t: 1 }); // a stopped container with the same image is started again
    expect((await open.inspectState(name))?.running).toBe(false);
    expect(
      (
        await open.run({
          name,
          image: webImage,
          cmd: serve(port),
          labels: { ...TEST_LABELS, 'norn.app': 'web' },
          ports: [port],
          stopTimeoutSec: 1,
        })
      ).id,
    ).toBe(first.id);
    expect(await open.inspectState(name)).toMatchObject({
      running: true,
      restarting: false,
      exitCode: null,
      restartCount: 0,
    });

    const replaced = await open.run({
      name,
      image: otherImage,
      cmd: serve(port),
      labels: { ...TEST_LABELS, 'norn.app': 'web' },
      stopTimeoutSec: 1,
    });
    expect(replaced.id).not.toBe(first.id);
    expect(await open.inspectState(first.id)).toBeNull();
    expect(
      await waitFor(
        async () =>
          (await fetch(url).then(
            (r) => r.text(),
            () => '',
          )) === 'second\n',
        10_000,
      ),
    ).toBe(true);

    const listed = await open.list({ 'norn.app': 'web', ...TEST_LABELS });
    expect(listed).toEqual([
      expect.objectContaining({ id: replaced.id, name, image: otherImage, state: 'running' }),
    ]);

    await open.stopAndRemove(name); // the container's own stop timeout (1 s) applies
    await open.stopAndRemove(name, { timeoutSec: 1 }); // idempotent
    await open.stopAndRemove('norn-test-never-existed');
    expect(await open.inspectState(name)).toBeNull();
    expect(await httpProbe(url, 1_000)).toMatchObject({ ok: false, error: 'ECONNREFUSED' });
  });

  it('runs one-off commands to completion with exit codes and output tails, then removes them', async () => {
    const ok = uniqueName('norn-test-once');
    const lines: string[] = [];
    const passed = await open.runToCompletion({
      name: ok,
      image: webImage,
      cmd: ['sh', '-c', 'echo all good'],
      labels: { ...TEST_LABELS },
      onLine: (l) => lines.push(l),
    });
    expect(passed).toEqual({ exitCode: 0, tail: ['all good'] });
    expect(lines).toEqual(['all good']);
    expect(await open.inspectState(ok)).toBeNull();

    const bad = uniqueName('norn-test-once');
    const failed = await open.runToCompletion({
      name: bad,
      image: webImage,
      labels: { ...TEST_LABELS },
      cmd: ['sh', '-c', 'echo $GREETING; echo to-stderr >&2; echo token=$TOKEN; exit 3'],
      env: { GREETING: 'hello', TOKEN: 'tok-very-secret' },
      redact: ['tok-very-secret'],
    });
    expect(failed.exitCode).toBe(3);
    expect(failed.tail).toEqual(expect.arrayContaining(['hello', 'to-stderr', 'token=***']));
    expect(await open.inspectState(bad)).toBeNull();
  });

  it('kills and removes a one-off container on timeout and on abort', async () => {
    const slow = uniqueName('norn-test-slow');
    const timedOut = await rejection(
      open.runToCompletion({
        name: slow,
        image: webImage,
        cmd: ['sh', '-c', 'echo waiting; sleep 30'],
        labels: { ...TEST_LABELS },
        timeoutMs: 1_000,
      }),
    );
    expect(timedOut.code).toBe('TIMEOUT');
    expect(timedOut.details?.tail).toEqual(['waiting']);
    expect(await open.inspectState(slow)).toBeNull();

    const aborted = uniqueName('norn-test-slow');
    const controller = new AbortController();
    setTimeout(() => controller.abort('cancelled by test'), 500);
    const started = Date.now();
    const err = await rejection(
      open.runToCompletion({
        name: aborted,
        image: webImage,
        cmd: ['sleep', '30'],
        labels: { ...TEST_LABELS },
        signal: controller.signal,
      }),
    );
    expect(err.code).toBe('CANCELLED');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await open.inspectState(aborted)).toBeNull();
  });

  it('says NOT_FOUND for an image that is neither local nor in the registry, and for pushing one', async () => {
    const missing = open.imageRef('norn-test-missing', fakeSha());
    const err = await rejection(
      open.run({
        name: uniqueName('norn-test-missing'),
        image: missing,
        labels: { ...TEST_LABELS },
      }),
    );
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain(`docker pull of ${missing}`);
    expect((await rejection(open.push({ tag: missing }))).code).toBe('NOT_FOUND');
  });

  it('removes images idempotently and refuses while a container uses one', async () => {
    const { tag } = await build(open, 'norn-test-rmi', ['CMD ["sleep", "3600"]']);
    const name = uniqueName('norn-test-rmi');
    await open.run({ name, image: tag, labels: { ...TEST_LABELS } });
    expect((await rejection(open.removeImage(tag))).code).toBe('CONFLICT');
    await open.stopAndRemove(name, { timeoutSec: 1 });
    await open.removeImage(tag);
    await open.removeImage(tag);
    await expect(engine.getImage(tag).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });
});
