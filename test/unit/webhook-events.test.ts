/** The forges' published payloads (test/fixtures/webhooks) read into one RepoEvent shape. */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { toRepoEvent, type Provider, type RepoEvent } from '../../src/gitops/webhook-events.js';
import { signatureMatches, signFor } from '../../src/gitops/webhook-signature.js';
import { eventHeader, fixture } from '../support/webhooks.js';

const GITHUB_URLS = [
  'https://github.com/Codertocat/Hello-World.git',
  'git@github.com:Codertocat/Hello-World.git',
  'https://github.com/Codertocat/Hello-World',
];
const GITEA_URLS = [
  'http://localhost:3000/gitea/webhooks.git',
  'ssh://gitea@localhost:2222/gitea/webhooks.git',
  'http://localhost:3000/gitea/webhooks',
];
const GITEA_PR_URLS = [
  'https://try.gitea.io/jcitizen/my-repo.git',
  'git@try.gitea.io:jcitizen/my-repo.git',
  'https://try.gitea.io/jcitizen/my-repo',
];
const GITLAB_MR_URLS = [
  'http://example.com/gitlabhq/gitlab-test.git',
  'git@example.com:gitlabhq/gitlab-test.git',
  'http://example.com/gitlabhq/gitlab-test',
];

const GH_PR = {
  number: 2,
  headSha: 'ec26c3e57ca3a959ca5aad62de7213c562f8c821',
  baseSha: 'f95f852bd8fca8fcc58a9a2d6c842781e32a215e',
  headRef: 'changes',
  baseRef: 'master',
  title: 'Update the README with new information.',
};
const GITEA_PR = {
  number: 1,
  headSha: '2eba238e33607c1fa49253182e9fff42baafa1eb',
  baseSha: '39af58f1eff02aa308e16913e887c8d50362b474',
  headRef: 'feature',
  baseRef: 'master',
  title: 'Add License File',
};
const GL_MR = { number: 1, headRef: 'ms-viewport', baseRef: 'master', title: 'MS-Viewport' };
const GITEA_PUSH = {
  before: '28e1879d029cb852e4844d9c718537df08844e03',
  after: 'bffeb74224043ba2feb48d137756c8a9331c449a',
  deleted: false,
};

const cases: Array<[Provider, string, Partial<RepoEvent>]> = [
  [
    'github',
    'push.default-branch',
    {
      kind: 'push',
      repoUrls: GITHUB_URLS,
      defaultBranch: 'master',
      push: {
        ref: 'refs/heads/master',
        branch: 'master',
        deleted: false,
        before: '0000000000000000000000000000000000000000',
        after: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
      },
    },
  ],
  [
    'github',
    'push.branch',
    {
      kind: 'push',
      defaultBranch: 'master',
      push: {
        ref: 'refs/heads/changes',
        branch: 'changes',
        deleted: false,
        before: GH_PR.baseSha,
        after: GH_PR.headSha,
      },
    },
  ],
  [
    'github',
    'pull_request.opened',
    { kind: 'pull_request', pullRequest: { ...GH_PR, action: 'opened' } },
  ],
  [
    'github',
    'pull_request.synchronize',
    { kind: 'pull_request', pullRequest: { ...GH_PR, action: 'updated' } },
  ],
  [
    'github',
    'pull_request.closed',
    { kind: 'pull_request', pullRequest: { ...GH_PR, action: 'closed' } },
  ],
  [
    'github',
    'pull_request.closed-merged',
    { kind: 'pull_request', pullRequest: { ...GH_PR, action: 'merged' } },
  ],
  [
    'github',
    'ping',
    {
      kind: 'other',
      event: 'ping',
      repoUrls: [
        'https://github.com/Octocoders/Hello-World.git',
        'git@github.com:Octocoders/Hello-World.git',
        'https://github.com/Octocoders/Hello-World',
      ],
      defaultBranch: 'master',
    },
  ],
  [
    'gitlab',
    'push',
    {
      kind: 'push',
      event: 'Push Hook',
      repoUrls: [
        'http://example.com/mike/diaspora.git',
        'git@example.com:mike/diaspora.git',
        'http://example.com/mike/diaspora',
      ],
      defaultBranch: 'master',
      push: {
        ref: 'refs/heads/master',
        branch: 'master',
        deleted: false,
        before: '95790bf891e76fee5e1747ab589903a6a1f80f22',
        after: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
      },
    },
  ],
  [
    'gitlab',
    'merge_request.open',
    {
      kind: 'pull_request',
      repoUrls: GITLAB_MR_URLS,
      defaultBranch: 'master',
      pullRequest: {
        ...GL_MR,
        action: 'opened',
        headSha: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
      },
    },
  ],
  [
    'gitlab',
    'merge_request.update',
    {
      kind: 'pull_request',
      pullRequest: {
        ...GL_MR,
        action: 'updated',
        headSha: 'b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327',
      },
    },
  ],
  [
    'gitlab',
    'merge_request.merge',
    {
      kind: 'pull_request',
      pullRequest: {
        ...GL_MR,
        action: 'merged',
        headSha: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
      },
    },
  ],
  [
    'gitea',
    'push.branch',
    {
      kind: 'push',
      repoUrls: GITEA_URLS,
      defaultBranch: 'main',
      push: { ref: 'refs/heads/develop', branch: 'develop', ...GITEA_PUSH },
    },
  ],
  [
    'gitea',
    'push.default-branch',
    {
      kind: 'push',
      defaultBranch: 'main',
      push: { ref: 'refs/heads/main', branch: 'main', ...GITEA_PUSH },
    },
  ],
  [
    'gitea',
    'pull_request.opened',
    {
      kind: 'pull_request',
      repoUrls: GITEA_PR_URLS,
      defaultBranch: 'master',
      pullRequest: { ...GITEA_PR, action: 'opened' },
    },
  ],
  [
    'gitea',
    'pull_request.synchronized',
    { kind: 'pull_request', pullRequest: { ...GITEA_PR, action: 'updated' } },
  ],
];

describe('toRepoEvent on the forges’ published payloads', () => {
  it.each(cases)('%s %s', (provider, name, expected) => {
    const event = toRepoEvent(provider, eventHeader(provider, name), fixture(provider, name));
    expect(event).toMatchObject({ provider, event: eventHeader(provider, name), ...expected });
  });

  it('reads a tag push and a branch deletion as pushes that name them', () => {
    const tag = { ...fixture('github', 'push.branch'), ref: 'refs/tags/v1.0' };
    expect(toRepoEvent('github', 'push', tag).push).toMatchObject({ tag: 'v1.0', deleted: false });
    expect(toRepoEvent('github', 'push', tag).push?.branch).toBeUndefined();
    const deleted = { ...fixture('gitlab', 'push'), after: '0'.repeat(40) };
    expect(toRepoEvent('gitlab', 'Push Hook', deleted).push).toMatchObject({
      branch: 'master',
      deleted: true,
    });
    const ghDeleted = { ...fixture('github', 'push.branch'), deleted: true };
    expect(toRepoEvent('github', 'push', ghDeleted).push?.deleted).toBe(true);
  });

  it('reads a payload missing what its kind needs as "other" (recorded, starts nothing)', () => {
    expect(toRepoEvent('github', 'push', { repository: {} }).kind).toBe('other');
    expect(toRepoEvent('gitea', 'pull_request', { action: 'opened' }).kind).toBe('other');
    expect(toRepoEvent('gitlab', 'Merge Request Hook', []).kind).toBe('other');
    expect(toRepoEvent('gitlab', 'Tag Push Hook', fixture('gitlab', 'push'))).toMatchObject({
      kind: 'other',
      defaultBranch: 'master',
    });
  });

  it('reads a GitLab MR update that moved no code (no oldrev) as "other"', () => {
    const mr = fixture('gitlab', 'merge_request.update');
    delete mr.object_attributes.oldrev;
    expect(toRepoEvent('gitlab', 'Merge Request Hook', mr).pullRequest?.action).toBe('other');
  });
});

describe('the fixtures', () => {
  it('hold GitHub’s published examples verbatim (@octokit/webhooks-examples)', () => {
    const require = createRequire(import.meta.url);
    const index = require('@octokit/webhooks-examples/api.github.com/index.json') as Array<{
      name: string;
      examples: unknown[];
    }>;
    const published = (name: string) =>
      index.find((e) => e.name === name)!.examples.map((e) => JSON.stringify(e));
    for (const [event, file] of [
      ['push', 'push.default-branch'],
      ['ping', 'ping'],
      ['pull_request', 'pull_request.opened'],
      ['pull_request', 'pull_request.synchronize'],
      ['pull_request', 'pull_request.closed'],
    ] as const)
      expect(published(event)).toContain(JSON.stringify(fixture('github', file)));
  });
});

describe('signatures', () => {
  const raw = Buffer.from('Hello, World!');
  const secret = "It's a Secret to Everybody";

  it('checks GitHub’s own test vector', async () => {
    const sig = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
    expect(signFor('github', secret, raw)).toBe(sig);
    expect(await signatureMatches('github', secret, raw, sig)).toBe(true);
    expect(await signatureMatches('github', 'other secret', raw, sig)).toBe(false);
    expect(await signatureMatches('github', secret, Buffer.from('Hello, World?'), sig)).toBe(false);
  });

  it('checks Gitea’s bare hex HMAC and GitLab’s token, refusing malformed ones', async () => {
    const hex = sig('gitea');
    expect(hex).toMatch(/^[0-9a-f]{64}$/);
    expect(await signatureMatches('gitea', secret, raw, hex)).toBe(true);
    expect(await signatureMatches('gitea', secret, raw, `sha256=${hex}`)).toBe(false);
    expect(await signatureMatches('gitea', secret, raw, 'zz')).toBe(false);
    expect(await signatureMatches('gitlab', secret, raw, secret)).toBe(true);
    expect(await signatureMatches('gitlab', secret, raw, `${secret}x`)).toBe(false);
    expect(await signatureMatches('gitlab', secret, raw, undefined)).toBe(false);
    expect(await signatureMatches('github', secret, Buffer.alloc(0), 'sha256=00')).toBe(false);
  });

  const sig = (p: Provider) => signFor(p, secret, raw);
});
