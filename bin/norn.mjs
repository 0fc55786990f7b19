#!/usr/bin/env node
// The norn CLI: loads the TypeScript sources through tsx, so it runs from any directory.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
