/** The stack spec: the README example with its defaults, and every kind of refusal with its path. */
import { describe, expect, it } from 'vitest';
import { aStack, STACK_YAML, stackOf, stackProblems } from '../support/stacks.js';

const paths = (input: unknown) => stackProblems(input).map((p) => p.path);

describe('a valid stack', () => {
  it('parses the README example, with the secret apart from the spec and defaults filled in', () => {
    const { spec, webhookSecret } = stackOf(STACK_YAML);
    expect(webhookSecret).toBe('s3cret-s3cret-s3cret');
    expect(spec).not.toHaveProperty('webhookSecret');
    expect(spec).toEqual({
      name: 'platform',
      repo: { url: 'https://git.example.com/acme/infra.git', branch: 'main' },
      path: 'stacks/platform',
      engine: 'opentofu',
      feedback: {
        provider: 'github',
        repo: 'acme/infra',
        apiUrl: 'https://api.github.com',
        tokenEnv: 'NORN_GITHUB_TOKEN',
      },
      drift: { schedule: '0 6 * * *', timezone: 'Europe/Berlin' },
      images: [{ name: 'web', dockerfile: 'app/Dockerfile' }],
      verify: [
        {
          http: {
            url: 'https://app.example.com/healthz',
            status: 200,
            contains: 'ok',
            timeout: '10s',
            deadline: '5m',
          },
        },
        { pods: { namespace: 'default', selector: 'app=web', deadline: '5m' } },
        {
          runner: {
            url: 'https://gitlab.example.com/api/v4/runners?tag_list=infra',
            tokenEnv: 'NORN_GITLAB_TOKEN',
            tags: ['infra'],
            deadline: '5m',
          },
        },
      ],
    });
  });

  it('leaves the branch unset (the default branch), drifts daily at 06:00 UTC, engine opentofu', () => {
    const { spec, webhookSecret } = stackOf(aStack());
    expect(spec.repo).toEqual({ url: 'https://git.example.com/acme/infra.git' });
    expect(spec.repo.branch).toBeUndefined();
    expect(spec.drift).toEqual({ schedule: '0 6 * * *', timezone: 'UTC' });
    expect(spec.engine).toBe('opentofu');
    expect(webhookSecret).toBeUndefined();
    expect(stackOf(aStack({ path: undefined })).spec.path).toBe('.');
  });

  it('fills in each provider API default; GitLab takes a project path or numeric id', () => {
    const fb = (feedback: object) => stackOf(aStack({ feedback })).spec.feedback;
    expect(fb({ provider: 'gitlab', repo: 'acme/platform/infra', tokenEnv: 'T' })?.apiUrl).toBe(
      'https://gitlab.com',
    );
    expect(fb({ provider: 'gitlab', repo: '4242', tokenEnv: 'T' })?.repo).toBe('4242');
    expect(
      fb({ provider: 'gitea', repo: 'acme/infra', apiUrl: 'https://git.acme.dev', tokenEnv: 'T' })
        ?.apiUrl,
    ).toBe('https://git.acme.dev');
  });

  it('takes null for webhookSecret (remove it) and JSON text', () => {
    expect(stackOf(aStack({ webhookSecret: null })).webhookSecret).toBeNull();
    expect(stackOf(JSON.stringify(aStack())).spec.name).toBe('net');
  });
});

describe('a refused stack', () => {
  it('lists every unknown key with its path and a suggestion', () => {
    const problems = stackProblems(
      aStack({ engin: 'opentofu', repo: { url: 'https://x.example/a.git', brnach: 'main' } }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: 'engin', message: 'unknown key (did you mean "engine"?)' },
        { path: 'repo.brnach', message: 'unknown key (did you mean "branch"?)' },
      ]),
    );
  });

  it('refuses a bad schedule, an unknown time zone, each at its field', () => {
    expect(stackProblems(aStack({ drift: { schedule: '* * *' } }))).toEqual([
      { path: 'drift.schedule', message: expect.stringMatching(/5 fields/) },
    ]);
    expect(stackProblems(aStack({ drift: { schedule: '0 0 31 4,6 *' } }))[0]?.path).toBe(
      'drift.schedule',
    );
    expect(paths(aStack({ drift: { timezone: 'Mars/Olympus' } }))).toEqual(['drift.timezone']);
  });

  it('refuses paths outside the repository, and absolute ones', () => {
    expect(stackProblems(aStack({ path: '../elsewhere' }))).toEqual([
      { path: 'path', message: expect.stringMatching(/outside the repository/) },
    ]);
    expect(paths(aStack({ path: '/etc' }))).toEqual(['path']);
    expect(paths(aStack({ images: [{ name: 'web', dockerfile: 'a/../../Dockerfile' }] }))).toEqual([
      'images[0].dockerfile',
    ]);
  });

  it('needs feedback.tokenEnv (a variable name, not the token), and gitea its apiUrl', () => {
    expect(stackProblems(aStack({ feedback: { provider: 'github', repo: 'acme/infra' } }))).toEqual(
      [{ path: 'feedback.tokenEnv', message: 'is required' }],
    );
    expect(
      paths(
        aStack({ feedback: { provider: 'github', repo: 'acme/infra', tokenEnv: 'ghp_ab-cd' } }),
      ),
    ).toEqual(['feedback.tokenEnv']);
    expect(
      paths(aStack({ feedback: { provider: 'gitea', repo: 'acme/infra', tokenEnv: 'T' } })),
    ).toEqual(['feedback.apiUrl']);
    expect(
      paths(aStack({ feedback: { provider: 'bitbucket', repo: 'acme', tokenEnv: 'T' } })),
    ).toEqual(['feedback.provider']);
    expect(
      paths(aStack({ feedback: { provider: 'github', repo: 'acme', tokenEnv: 'T' } })),
    ).toEqual(['feedback.repo']);
  });

  it('refuses an engine other than opentofu, a bad name, a short secret, a token in the repo URL', () => {
    expect(
      paths({
        ...aStack({ engine: 'terraform', name: 'Platform', webhookSecret: 'short' }),
        repo: { url: 'https://user:tok@git.example.com/a.git' },
      }).sort(),
    ).toEqual(['engine', 'name', 'repo.url', 'webhookSecret']);
  });

  it('refuses verify items naming no check or two, and each check field at its path', () => {
    expect(
      paths(
        aStack({
          verify: [
            {},
            { http: { url: 'https://a.example' }, pods: { selector: 'a=b' } },
            { http: { url: 'ftp://a.example', status: 99 } },
            { runner: { url: 'https://gitlab.example.com/api/v4/runners' } },
            { pods: { selector: 'app=web', bogus: 1 } },
          ],
        }),
      ),
    ).toEqual([
      'verify[0]',
      'verify[1]',
      'verify[2].http.url',
      'verify[2].http.status',
      'verify[3].runner.tokenEnv',
      'verify[4].pods.bogus',
    ]);
  });

  it('refuses repeated image names, and says so about a document that is not a mapping', () => {
    expect(
      paths(aStack({ images: [{ name: 'web' }, { name: 'web', dockerfile: 'b/Dockerfile' }] })),
    ).toEqual(['images[1].name']);
    expect(stackProblems('- a list')).toEqual([
      { path: '', message: expect.stringMatching(/^a stack must be a mapping/) },
    ]);
  });
});
