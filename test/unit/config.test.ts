import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import { credentialFor, parseGitCredentials } from '../../src/shared/drivers/git-credentials.js';

describe('loadConfig', () => {
  it('applies defaults', () => {
    const c = loadConfig({});
    expect(c.http).toEqual({
      port: 8080,
      host: '127.0.0.1',
      apiToken: undefined,
      maxBodyBytes: 1_048_576,
    });
    expect(loadConfig({ NORN_MAX_BODY_BYTES: '2048' }).http.maxBodyBytes).toBe(2048);
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(c.worker.concurrency).toBe(4);
    expect(c.queuePrefix).toBe('norn');
    expect(c.deployPipeline).toBe('deploy');
  });

  it('reports every problem at once', () => {
    let message = '';
    try {
      loadConfig({
        PORT: 'http',
        REDIS_URL: 'nope',
        NORN_WORKER_CONCURRENCY: '0',
        NORN_API_TOKEN: 'short',
        LOG_LEVEL: 'loud',
      });
    } catch (err) {
      message = (err as Error).message;
      expect(err).toMatchObject({ code: 'CONFIG_INVALID' });
    }
    for (const v of ['PORT', 'REDIS_URL', 'NORN_WORKER_CONCURRENCY', 'NORN_API_TOKEN', 'LOG_LEVEL'])
      expect(message).toContain(v);
  });

  it('refuses a non-loopback bind without a token, allows it with one', () => {
    expect(() => loadConfig({ HOST: '0.0.0.0' })).toThrow(
      /NORN_API_TOKEN: required when HOST is not loopback/,
    );
    expect(loadConfig({ HOST: '0.0.0.0', NORN_API_TOKEN: 'a'.repeat(32) }).http.host).toBe(
      '0.0.0.0',
    );
    expect(loadConfig({ HOST: '::1' }).http.apiToken).toBeUndefined();
  });

  it('treats empty strings as unset and rejects heartbeats that could outlive the lease', () => {
    expect(loadConfig({ PORT: '' }).http.port).toBe(8080);
    expect(() => loadConfig({ NORN_LEASE_TTL_MS: '1000', NORN_LEASE_HEARTBEAT_MS: '800' })).toThrow(
      /at most half/,
    );
  });
});

describe('git credentials bound to hosts', () => {
  const tok = 'ghp_0123456789abcdef';

  it('reads NORN_GIT_CREDENTIALS as JSON or host=token pairs, and NORN_GIT_TOKEN with its hosts', () => {
    const json = loadConfig({
      NORN_GIT_CREDENTIALS: JSON.stringify({
        'GitHub.com': tok,
        'git.example.com:3000': 'glpat-x',
      }),
    });
    expect(json.deploy.gitCredentials).toEqual([
      { host: 'github.com', token: tok, source: 'NORN_GIT_CREDENTIALS' },
      { host: 'git.example.com', port: 3000, token: 'glpat-x', source: 'NORN_GIT_CREDENTIALS' },
    ]);
    const pairs = loadConfig({ NORN_GIT_CREDENTIALS: `github.com=${tok}, [::1]:8443=t2` });
    expect(pairs.deploy.gitCredentials.map((c) => [c.host, c.port, c.token])).toEqual([
      ['github.com', undefined, tok],
      ['[::1]', 8443, 't2'],
    ]);
    const one = loadConfig({ NORN_GIT_TOKEN: tok, NORN_GIT_TOKEN_HOSTS: 'github.com,gitlab.com' });
    expect(one.deploy.gitCredentials.map((c) => `${c.host} ${c.source}`)).toEqual([
      'github.com NORN_GIT_TOKEN_HOSTS',
      'gitlab.com NORN_GIT_TOKEN_HOSTS',
    ]);
  });

  it('refuses a token without hosts and bindings that are not host[:port], listing each, never a token', () => {
    let message = '';
    try {
      loadConfig({
        NORN_GIT_TOKEN: tok,
        NORN_GIT_CREDENTIALS: JSON.stringify({
          'https://github.com': tok,
          'github.com/acme': tok,
          'example.com:99999': tok,
          'a.example': 'two words',
          'b.example': tok,
          'B.example': tok,
        }),
      });
    } catch (err) {
      message = (err as Error).message;
    }
    for (const problem of [
      'NORN_GIT_TOKEN: set NORN_GIT_TOKEN_HOSTS to the hosts it may be sent to',
      'NORN_GIT_CREDENTIALS: "https://github.com" is not host[:port] (leave out the scheme, user and path)',
      'NORN_GIT_CREDENTIALS: "github.com/acme" is not host[:port]',
      'NORN_GIT_CREDENTIALS: "example.com:99999" has a port outside 1-65535',
      'NORN_GIT_CREDENTIALS: the token for a.example must be one word',
      'NORN_GIT_CREDENTIALS: b.example is bound to more than one token',
    ])
      expect(message).toContain(problem);
    expect(message).not.toContain(tok);
    expect(() => loadConfig({ NORN_GIT_CREDENTIALS: `{"github.com": ${tok}` })).toThrow(
      /NORN_GIT_CREDENTIALS: is not a valid JSON object of host → token/,
    );
    expect(() => loadConfig({ NORN_GIT_TOKEN_HOSTS: 'github.com' })).toThrow(
      /NORN_GIT_TOKEN_HOSTS: set only together with NORN_GIT_TOKEN/,
    );
  });

  it('matches a URL to the token of its host and port (no port: the scheme default)', () => {
    const { credentials } = parseGitCredentials({
      NORN_GIT_CREDENTIALS: `github.com=${tok},127.0.0.1:8080=local,git.example.com:80=plain`,
    });
    const kind = (url: string) => credentialFor(url, credentials).kind;
    expect(kind('https://github.com/acme/app.git')).toBe('send');
    expect(kind('https://GITHUB.com:443/acme/app.git')).toBe('send');
    expect(kind('https://github.com:8443/acme/app.git')).toBe('none');
    expect(kind('https://api.github.com/acme/app.git')).toBe('none');
    expect(kind('https://github.com.evil.example/acme/app.git')).toBe('none');
    expect(kind('http://127.0.0.1:8080/app.git')).toBe('send'); // loopback: not on any wire
    expect(kind('http://localhost:8080/app.git')).toBe('none'); // bound to 127.0.0.1, not localhost
    expect(kind('http://git.example.com/app.git')).toBe('plain-http');
    expect(kind('http://github.com/acme/app.git')).toBe('plain-http'); // bound, but never over http
    expect(kind('git@github.com:acme/app.git')).toBe('not-http');
  });
});
