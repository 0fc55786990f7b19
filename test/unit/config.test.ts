import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';

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
