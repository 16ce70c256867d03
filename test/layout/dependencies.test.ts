// The folders say who owns what, and imports go one way:
//   config  ←  stores  ←  collector / archive / report / dashboards / api
// (clock/ is a leaf every part may use; bin/ and sim/ put the parts together).
// This test reads every source file's relative imports and fails naming the
// file and the import that goes the wrong way.
import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

/** What each folder may import besides itself. */
const ALLOWED: Record<string, readonly string[]> = {
  config: [],
  clock: [],
  stores: ['config'],
  collector: ['config', 'stores', 'clock'],
  archive: ['config', 'stores', 'clock'],
  report: ['config', 'stores'],
  dashboards: ['config', 'stores'],
  // The API reads stores, the report and the archive's read side; never the collector.
  api: ['config', 'stores', 'report', 'archive'],
};

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s*['"](\.\.?\/[^'"]+)['"]|import\(\s*['"](\.\.?\/[^'"]+)['"]\s*\)/g)) {
    out.push((m[1] ?? m[2])!);
  }
  return out;
}

describe('the dependency direction of the folders', () => {
  const wrong: string[] = [];
  let checked = 0;
  for (const [folder, allowed] of Object.entries(ALLOWED)) {
    let files: string[] = [];
    try {
      files = sources(join(root, folder));
    } catch {
      continue;
    }
    for (const f of files) {
      for (const spec of imports(f)) {
        checked++;
        const target = relative(root, resolve(dirname(f), spec)).split('/')[0]!;
        if (target !== folder && !allowed.includes(target)) wrong.push(`${relative(root, f)} imports ${spec} (${folder}/ may import ${allowed.join(', ') || 'nothing outside itself'})`);
      }
    }
  }

  it('finds imports to check (the scan itself works)', () => {
    expect(checked).toBeGreaterThan(100);
  });

  it('has no import against the direction config ← stores ← parts', () => {
    expect(wrong).toEqual([]);
  });

  it('would catch a wrong import (the rule itself fails on a bad case)', () => {
    const target = relative(root, resolve(join(root, 'report'), '../collector/schema.ts')).split('/')[0]!;
    expect(ALLOWED.report!.includes(target)).toBe(false);
  });
});
