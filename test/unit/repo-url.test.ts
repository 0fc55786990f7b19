import { describe, expect, it } from 'vitest';
import { normalizeRepoUrl, normalizeRepoUrls } from '../../src/gitops/repo-url.js';

describe('normalizeRepoUrl', () => {
  it.each([
    ['https://github.com/Codertocat/Hello-World.git', 'github.com/Codertocat/Hello-World'],
    ['https://github.com/Codertocat/Hello-World', 'github.com/Codertocat/Hello-World'],
    ['https://GitHub.COM/Codertocat/Hello-World/', 'github.com/Codertocat/Hello-World'],
    ['http://example.com/mike/diaspora.git', 'example.com/mike/diaspora'],
    ['git@github.com:Codertocat/Hello-World.git', 'github.com/Codertocat/Hello-World'],
    ['git@Example.com:mike/diaspora', 'example.com/mike/diaspora'],
    ['example.com:mike/diaspora.git', 'example.com/mike/diaspora'],
    ['ssh://gitea@localhost:2222/gitea/webhooks.git', 'localhost/gitea/webhooks'],
    ['http://localhost:3000/gitea/webhooks', 'localhost/gitea/webhooks'],
    ['https://user:token@git.example.com/a/b.git', 'git.example.com/a/b'],
    ['https://git.example.com/group/sub/project.git?x=1#frag', 'git.example.com/group/sub/project'],
    ['git://github.com/Octocoders/Hello-World.git', 'github.com/Octocoders/Hello-World'],
    ['  https://github.com/a/b.git  ', 'github.com/a/b'],
    ['https://[::1]:8443/a/b', '::1/a/b'],
    ['file:///srv/git/app.git', '/srv/git/app.git'],
    ['file:///srv/git/app/', '/srv/git/app'],
    ['file:///srv/git/with%20space', '/srv/git/with space'],
    ['/srv/git/app.git', '/srv/git/app.git'],
  ])('%s → %s', (url, normalized) => expect(normalizeRepoUrl(url)).toBe(normalized));

  it.each(['', 'not a url', 'ftp://example.com/a/b', 'https://example.com/', 'git@host:'])(
    'has no normal form for %j',
    (url) => expect(normalizeRepoUrl(url)).toBeUndefined(),
  );

  it('gives one form for the clone, ssh and web URLs of one repository', () => {
    expect(
      normalizeRepoUrls([
        'https://github.com/Codertocat/Hello-World.git',
        'git@github.com:Codertocat/Hello-World.git',
        'https://github.com/Codertocat/Hello-World',
        null,
        'garbage',
      ]),
    ).toEqual(['github.com/Codertocat/Hello-World']);
  });
});
