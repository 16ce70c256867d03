// Hostile configuration and spreadsheets: random YAML documents, mutated
// example configurations (config/examples/), junk bytes (a 5 MB file too),
// random and mutated CSV. loadConfig throws nothing but ConfigError and what
// it prints is bounded (at most 20 lines of at most 300 characters, then
// "and N more"); importSchoolsCsv never throws and every problem names its
// line and column. Seeded (a failure reproduces), bounded to a few seconds a
// property; KW_FUZZ_RUNS=N runs N cases each, without the time limit.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { cpSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parse as parseYaml, stringify as yamlText } from 'yaml';
import { parse as parseCsv } from 'csv-parse/sync';
import { loadConfig, ConfigError, MAX_PROBLEMS_SHOWN, MAX_PROBLEM_CHARS } from '../../config/load.ts';
import { importSchoolsCsv } from '../../config/import-csv.ts';
import { tempDir } from '../helpers/peers.ts';
import { prng } from '../helpers/prng.ts';

const SEED = 20261129;
const FUZZ_RUNS = Number(process.env.KW_FUZZ_RUNS ?? '') || undefined;
/** numRuns cases, or at most ~4 s of them in CI; KW_FUZZ_RUNS=N: N cases, however long. */
const params = (numRuns: number): fc.Parameters<unknown> => (FUZZ_RUNS ? { seed: SEED, numRuns: FUZZ_RUNS } : { seed: SEED, numRuns, interruptAfterTimeLimit: 4000 });
/** One load of a configuration may take this long, at most (the example loads in ~30 ms). */
const LOAD_MS = 5000;

const env = { KLAIWATCH_SCHOOL_COMMUNITY: 'fuzz-community' };
const dir = tempDir('fuzz');
const area = join(dir.path, 'area');
const EXAMPLE_FILES = ['klaiwatch.yaml', 'schools.yaml', 'office.yaml'] as const;
const originals = new Map<string, string>();
beforeAll(() => {
  cpSync('config/examples', area, { recursive: true });
  for (const f of EXAMPLE_FILES) originals.set(f, readFileSync(join(area, f), 'utf8'));
});
afterAll(() => dir.remove());

/** What the operator sees of a ConfigError is bounded; anything else thrown fails the property. */
function expectBoundedLoad(settingsPath: string): void {
  const t0 = performance.now();
  try {
    loadConfig(settingsPath, { env, cwd: dir.path });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw new Error(`loadConfig threw ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err });
    expect(err.problems.length).toBeGreaterThan(0);
    const lines = err.message.split('\n');
    expect(lines.length).toBeLessThanOrEqual(MAX_PROBLEMS_SHOWN + 1);
    if (err.problems.length > MAX_PROBLEMS_SHOWN) expect(lines.at(-1)).toBe(`and ${err.problems.length - MAX_PROBLEMS_SHOWN} more`);
    for (const l of lines) {
      expect(l.length).toBeLessThanOrEqual(MAX_PROBLEM_CHARS);
      expect(l).not.toMatch(/[\u0000-\u001f\u007f]/);
    }
  }
  expect(performance.now() - t0).toBeLessThan(LOAD_MS);
}

/** Writes the example area with one file replaced, and loads it. */
function loadWith(file: (typeof EXAMPLE_FILES)[number], content: string | Uint8Array): void {
  for (const f of EXAMPLE_FILES) writeFileSync(join(area, f), f === file ? content : originals.get(f)!);
  expectBoundedLoad(join(area, 'klaiwatch.yaml'));
}

const fileArb = fc.constantFrom(...EXAMPLE_FILES);

/** Every [container, key] inside a parsed YAML value, so that a mutation can pick one. */
function slots(v: unknown, out: [Record<string, unknown> | unknown[], string | number][] = []): typeof out {
  if (Array.isArray(v)) v.forEach((x, i) => (out.push([v, i]), slots(x, out)));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push([v as Record<string, unknown>, k]), slots(x, out);
  return out;
}

const mutation = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('delete', 'replace', 'duplicate', 'rename'),
  value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('', 'auto', 'nobody', 'office-uplink', '1036090101-router', 'env:KW_UNSET', 'file:/nonexistent', '10.0.0', '127.0.0.1', -1, 0, 1e308, '30x', '/proc/kw', null)),
  key: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('parent', 'profile', 'snmp', 'id', 'devices', 'inventory', 'code')),
});

function mutate(doc: unknown, ms: { at: number; op: string; value: unknown; key: string }[]): unknown {
  for (const m of ms) {
    const all = slots(doc);
    if (all.length === 0) return m.value;
    const [container, key] = all[m.at % all.length]!;
    if (Array.isArray(container)) {
      const i = key as number;
      if (m.op === 'delete') container.splice(i, 1);
      else if (m.op === 'duplicate') container.splice(i, 0, structuredClone(container[i]));
      else container[i] = m.value;
    } else {
      const k = key as string;
      if (m.op === 'delete') delete container[k];
      else if (m.op === 'rename') (container[m.key] = container[k]), delete container[k];
      else if (m.op === 'duplicate') container[m.key] = structuredClone(container[k]);
      else container[k] = m.value;
    }
  }
  return doc;
}

describe('fuzzing the configuration loader', () => {
  it('random YAML documents as the settings or an inventory: only ConfigError, bounded output', () => {
    fc.assert(
      fc.property(fileArb, fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.dictionary(fc.constantFrom('area', 'inventory', 'influx', 'schools', 'office', 'snmp', 'traffic', 'devices'), fc.jsonValue({ maxDepth: 3 }))), (file, doc) => {
        loadWith(file, yamlText(doc));
      }),
      params(150),
    );
  });

  it('the example configuration with structural mutations (keys deleted, renamed, duplicated, values replaced)', () => {
    const parsed = new Map(EXAMPLE_FILES.map((f) => [f, parseYaml(readFileSync(join('config/examples', f), 'utf8')) as unknown]));
    fc.assert(
      fc.property(fileArb, fc.array(mutation, { minLength: 1, maxLength: 6 }), (file, ms) => {
        loadWith(file, yamlText(mutate(structuredClone(parsed.get(file)), ms)));
      }),
      params(150),
    );
  });

  it('the example configuration with its text mutated (characters inserted, deleted, replaced)', () => {
    const edit = fc.record({ at: fc.nat(), cut: fc.nat({ max: 40 }), insert: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom(':', '- ', '\n  ', '{', '[', '"', "'", '&a', '*a', '<<: *a', '!!binary', '\t', '#', '\u0000', '\ufeff')) });
    fc.assert(
      fc.property(fileArb, fc.array(edit, { minLength: 1, maxLength: 8 }), (file, edits) => {
        let text = originals.get(file)!;
        for (const e of edits) {
          const at = e.at % (text.length + 1);
          text = text.slice(0, at) + e.insert + text.slice(at + e.cut);
        }
        loadWith(file, text);
      }),
      params(150),
    );
  });

  it('junk bytes as the settings or an inventory', () => {
    fc.assert(
      fc.property(fileArb, fc.uint8Array({ maxLength: 4096 }), (file, bytes) => {
        loadWith(file, bytes);
      }),
      params(200),
    );
  });

  it('a 5 MB junk file as the settings and as an inventory: bounded output, quickly; check-config prints a screenful', () => {
    const rand = prng(SEED);
    const junk = Buffer.alloc(5_000_000);
    for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(rand() * 256);
    // Printable junk too: what made one 8 MB line before.
    const text = junk.toString('base64').slice(0, 5_000_000);
    for (const content of [junk, text]) {
      loadWith('klaiwatch.yaml', content);
      loadWith('schools.yaml', content);
    }
    writeFileSync(join(area, 'klaiwatch.yaml'), text);
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ['bin/klaiwatch.ts', 'check-config', '--config', join(area, 'klaiwatch.yaml')], { encoding: 'utf8', env: { ...process.env, ...env } });
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines.length).toBeLessThanOrEqual(MAX_PROBLEMS_SHOWN + 2);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(MAX_PROBLEM_CHARS);
    expect(lines.at(-1)).toMatch(/^klaiwatch check-config: configuration has \d+ problems?$/);
  });

  it('a YAML alias bomb is refused, not expanded', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]', 'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]', 'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]', 'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]', 'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]', 'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]', 'g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]', ''].join('\n');
    loadWith('schools.yaml', bomb);
    expect(() => loadConfig(join(area, 'klaiwatch.yaml'), { env, cwd: dir.path })).toThrow(/schools\.yaml: YAML: .*alias/i);
  });
});

// ---------------------------------------------------------------- CSV

const CSV_PROBLEM = /^f\.csv(:(\d+|\?))?: \S/;

function expectSaneProblems(problems: string[]): void {
  for (const p of problems) {
    expect(p).toMatch(CSV_PROBLEM);
    expect(p.length).toBeLessThanOrEqual(MAX_PROBLEM_CHARS);
    expect(p).not.toMatch(/[\u0000-\u001f\u007f]/);
  }
}

const csvCell = (v: string) => (/[",\r\n]/.test(v) || v !== v.trim() ? `"${v.replace(/"/g, '""')}"` : v);

describe('fuzzing the spreadsheet import', () => {
  const example = readFileSync('config/examples/schools.csv', 'utf8');
  const rows = parseCsv(example, { bom: true }) as string[][];
  const header = rows[0]!;

  it('random CSV text never throws; problems are short single lines that start with the file and line', () => {
    const cell = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('"', '""', ',', '\n', '\r\n', 'code', 'name_th', 'รหัสโรงเรียน', 'router_ip', 'dltv_receivers', '10.0.0.1', '3', '\ufeff', ' '));
    fc.assert(
      fc.property(fc.array(fc.array(cell, { maxLength: 8 }), { maxLength: 12 }), (table) => {
        const r = importSchoolsCsv(table.map((row) => row.join(',')).join('\n'), 'f.csv');
        expectSaneProblems(r.problems);
      }),
      params(300),
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 2000 }), (text) => {
        expectSaneProblems(importSchoolsCsv(text, 'f.csv').problems);
      }),
      params(300),
    );
  });

  it('the example sheet with cells changed: every problem names a changed row\'s line and a column of the sheet', () => {
    const value = fc.oneof(fc.string({ maxLength: 16 }), fc.constantFrom('', 'abc', '-1', '201', '2.5', '10.0.0', '999.1.1.1', '255.255.255.255', 'not-an-email', '1e9', 'NaN', 'auto', 'nobody', '0', '1036090102', '16.07'));
    const change = fc.record({ row: fc.integer({ min: 1, max: rows.length - 1 }), col: fc.integer({ min: 0, max: header.length - 1 }), value });
    const labels = new Set([...header, 'row']);
    fc.assert(
      fc.property(fc.array(change, { minLength: 1, maxLength: 5 }), (changes) => {
        const table = rows.map((r) => [...r]);
        for (const c of changes) table[c.row]![c.col] = c.value;
        const text = '\ufeff' + table.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
        const r = importSchoolsCsv(text, 'f.csv', { defaultParent: 'office-uplink' });
        expectSaneProblems(r.problems);
        const changedLines = new Set(changes.map((c) => c.row + 1));
        for (const p of r.problems) {
          const m = /^f\.csv:(\d+): (.+)$/.exec(p);
          expect(m, `no line in ${p}`).not.toBeNull();
          const line = Number(m![1]);
          if (!/appears twice/.test(p)) expect(changedLines.has(line), `${p}: line ${line} was not changed`).toBe(true);
          expect([...labels].some((l) => m![2]!.startsWith(`${l}: `)), `${p}: names no column of the sheet`).toBe(true);
        }
        // A sheet with problems imports nothing wrong: every school that came through is valid.
        if (r.problems.length === 0) expect(r.schools).toHaveLength(rows.length - 1);
      }),
      params(300),
    );
  });

  it('the example sheet with its text mutated never throws', () => {
    const edit = fc.record({ at: fc.nat(), cut: fc.nat({ max: 30 }), insert: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('"', ',', '\n', '\r', '""', '\u0000', '\ufeff')) });
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 8 }), (edits) => {
        let text = example;
        for (const e of edits) {
          const at = e.at % (text.length + 1);
          text = text.slice(0, at) + e.insert + text.slice(at + e.cut);
        }
        expectSaneProblems(importSchoolsCsv(text, 'f.csv').problems);
      }),
      params(300),
    );
  });

  it('a sheet of 5 MB and a row of 100 KB are refused with a line, quickly', () => {
    const t0 = performance.now();
    const big = 'code,name_th\n' + Array.from({ length: 200_000 }, (_, i) => `${i},โรงเรียน ${i}`).join('\n');
    expect(importSchoolsCsv(big, 'f.csv').problems).toEqual(['f.csv: more than 10000 rows; an area has a few hundred schools, one row each: is it the right file?']);
    const long = importSchoolsCsv(`code,name_th\n1,${'ก'.repeat(100_000)}\n2,ข\n`, 'f.csv');
    expect(long.problems).toEqual(['f.csv:2: name_th: the row is longer than 64 KiB']);
    expect(performance.now() - t0).toBeLessThan(10_000);
  });
});
