#!/usr/bin/env node
// The iot-ids command. Sources are TypeScript run through tsx, so there is no build step to forget.
// The demo promises to leave no file outside its temporary folder, so it runs without tsx's disk cache
// (/tmp/tsx-*); other commands keep the cache for faster starts.
if (process.argv[2] === 'demo') process.env.TSX_DISABLE_CACHE ??= '1';
const { register } = await import('tsx/esm/api');

register();
await import('../cli/main.ts');
