import { describe, expect, it } from 'vitest';
import { presentedToken, tokenMatches } from '../../src/api/auth.js';

describe('api token', () => {
  it('matches only the exact token', () => {
    expect(tokenMatches('secret-token-123456', 'secret-token-123456')).toBe(true);
    expect(tokenMatches('secret-token-123456', 'secret-token-12345')).toBe(false);
    expect(tokenMatches('secret-token-123456', undefined)).toBe(false);
    expect(tokenMatches(undefined, undefined)).toBe(true); // loopback-only mode
  });

  it('reads Bearer and Basic (token as password) headers', () => {
    expect(presentedToken('Bearer abc')).toBe('abc');
    expect(presentedToken(`Basic ${Buffer.from('u:tok:en').toString('base64')}`)).toBe('tok:en');
    expect(presentedToken('Digest x')).toBeUndefined();
    expect(presentedToken(undefined)).toBeUndefined();
  });
});
