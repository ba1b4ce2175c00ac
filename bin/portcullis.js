#!/usr/bin/env node
// The `portcullis` command. Portcullis runs its TypeScript sources directly through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
