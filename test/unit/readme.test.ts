import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envTable } from '../../src/shared/config-doc.js';

describe('README', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

  it('opens with the two commands for a fresh machine', () => {
    const firstBlock = readme.split('```')[1] ?? '';
    expect(firstBlock).toMatch(/script\/server/);
    expect(firstBlock).toMatch(/script\/test/);
  });

  it('lists every environment variable with its default, as the code has them', () => {
    expect(readme).toContain(envTable());
  });
});
