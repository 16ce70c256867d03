// File permissions of the traffic-log archive: the records are personal data
// (who used which address when), so nothing the archive writes may be
// readable by other users or writable by the group. The receivers run here
// in this process under umask 022 (the usual default), so only the modes the
// archive asks for explicitly can pass; the auditor's commands run as a user
// runs them (`node bin/klaiwatch.ts archive ...`), from an empty working
// folder, where DuckDB's default spill folder `.tmp` must never appear.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { join, relative } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../../config/load.ts';
import { TrafficService } from '../../archive/service.ts';
import { duck } from '../../archive/archive.ts';
import { Journal } from '../../archive/journal.ts';
import { PROJECT } from '../../sim/area.ts';
import { tempDir } from '../helpers/peers.ts';

const exec = promisify(execFile);
const dir = tempDir('permissions');
const cfg = join(dir.path, 'area.yaml');
const archiveDir = join(dir.path, 'archive');
const work = join(dir.path, 'work'); // the auditor's working folder
const evidence = join(dir.path, 'evidence', 'evidence.tar');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let umask: number;
const cwdTmp = join(process.cwd(), '.tmp');
const cwdTmpBefore = existsSync(cwdTmp);

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'archive', ...args, '--config', cfg], { cwd: work });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Every file and folder under `root`, with its permission bits. */
function walk(root: string): { path: string; mode: number; dir: boolean }[] {
  const out: { path: string; mode: number; dir: boolean }[] = [];
  const visit = (p: string) => {
    const st = lstatSync(p);
    out.push({ path: p, mode: st.mode & 0o7777, dir: st.isDirectory() });
    if (st.isDirectory()) for (const n of readdirSync(p)) visit(join(p, n));
  };
  visit(root);
  return out;
}

// Stamped now: a query's time range is pruned by the segments' receive times.
const line = (i: number) => `${new Date().toISOString()} gw firewall,info forward: in:lan out:wan, proto TCP (SYN), 10.23.4.${i % 250}:${1000 + i}->47.241.18.42:443, len 60`;

beforeAll(async () => {
  umask = process.umask(0o022);
  mkdirSync(work);
  mkdirSync(join(dir.path, 'evidence'));
  writeFileSync(join(dir.path, 'signing.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(
    join(dir.path, 'schools.yaml'),
    ['schools:', '  - code: "1036090101"', '    name_th: โรงเรียนบ้านหนองบัวแดง', '    devices:', '      - { id: r, kind: router, address: 127.0.0.1, profile: icmp-only }', ''].join('\n'),
  );
  writeFileSync(
    cfg,
    ['area: { code: t, name_th: สพป.ทดสอบ }', 'inventory: schools.yaml', 'influx: { url: "http://127.0.0.1:9" }', 'traffic:', '  dir: archive', '  signing_key: signing.pem', '  fsync_interval: 20ms', '  syslog: { udp: "127.0.0.1:0" }', ''].join('\n'),
  );

  // The receivers, as `klaiwatch archive serve` runs them: records over UDP, two seals, one record left in the log.
  const svc = new TrafficService(loadConfig(cfg), pino({ level: 'silent' }), () => 0.5);
  await svc.start();
  try {
    const port = Number(svc.bound['syslog-udp']!.split(':').pop());
    const sock = createSocket('udp4');
    const send = async (from: number, n: number) => {
      for (let i = from; i < from + n; i++) await new Promise<void>((r, j) => sock.send(line(i), port, '127.0.0.1', (e) => (e ? j(e) : r())));
      const end = Date.now() + 20_000;
      while (svc.stats.stored < from + n) {
        if (Date.now() > end) throw new Error(`stored ${svc.stats.stored} of ${from + n} records`);
        await sleep(20);
      }
    };
    await send(0, 200);
    await svc.seal();
    await send(200, 200);
    await svc.seal();
    await send(400, 1);
    sock.close();
    expect(svc.stats.seal_failures).toBe(0);
  } finally {
    await svc.stop();
  }

  // The auditor's commands: a query, an evidence export, the journal.
  const q = await cli('query', '--ip', '10.23.4.5', '--format', 'json', '--as', 'ผู้ตรวจสอบ ก.');
  expect(q.stderr).toMatch(/^2 rows \(0 not yet sealed\) from 2 of 2 segments read/);
  expect(q.code).toBe(0);
  const x = await cli('export', '--ip', '10.23.4.5', '--out', evidence, '--reference', 'test', '--as', 'ผู้ตรวจสอบ ก.');
  expect(x.code, x.stderr).toBe(0);
  expect(existsSync(evidence)).toBe(true);
}, 120_000);

afterAll(() => {
  process.umask(umask);
  dir.remove();
});

describe('archive file permissions', () => {
  it('no file or folder of the archive, nor the evidence export, is group-writable or has any bit for other users', () => {
    const all = [...walk(archiveDir), ...walk(evidence)];
    const bad = all.filter((e) => (e.mode & 0o027) !== 0).map((e) => `${relative(dir.path, e.path)} ${e.mode.toString(8)}`);
    expect(bad).toEqual([]);
    // And the walk saw what matters, with the modes asked for.
    const mode = (p: string) => all.find((e) => e.path === join(archiveDir, p))?.mode.toString(8);
    expect(mode('')).toBe('750');
    expect(mode('segments')).toBe('750');
    expect(mode('wal')).toBe('750');
    expect(mode('manifest.jsonl')).toBe('640');
    expect(mode('journal.sqlite')).toBe('640');
    const files = all.filter((e) => !e.dir).map((e) => relative(archiveDir, e.path));
    const parquet = files.filter((f) => /^segments\/seg-.*\.parquet$/.test(f));
    expect(parquet).toHaveLength(2);
    for (const f of parquet) expect(mode(f)).toBe('640');
    const wal = files.filter((f) => f.startsWith('wal/'));
    expect(wal.length).toBeGreaterThan(0);
    for (const f of wal) expect(mode(f), f).toBe('640');
    expect(all.find((e) => e.path === evidence)?.mode.toString(8)).toBe('640');
  });

  it("DuckDB's spill folders are inside the archive and gone after each seal and query; no .tmp in the working folder", () => {
    const tmp = join(archiveDir, 'tmp');
    // Only the record of segments found intact (query.ts alteredSegments) stays; no spill.
    expect((existsSync(tmp) ? readdirSync(tmp) : []).filter((f) => f !== 'verified.json')).toEqual([]);
    expect(readdirSync(work)).toEqual([]);
    if (!cwdTmpBefore) expect(existsSync(cwdTmp)).toBe(false);
  });

  it('a query that must spill writes into its folder inside the archive (0700), which its close removes', async () => {
    const spill = join(archiveDir, 'tmp', 'spill-test');
    const db = await duck(1, spill);
    try {
      await db.con.run("SET memory_limit = '32MB'");
      await db.con.run('CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS h FROM range(600000) r(i)');
      await db.con.run('CREATE TABLE u AS SELECT * FROM t ORDER BY h');
      const files = (await db.con.runAndReadAll('SELECT path FROM duckdb_temporary_files()')).getRows().map((r) => String(r[0]));
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) expect(f.startsWith(spill + '/'), f).toBe(true);
      expect((lstatSync(spill).mode & 0o777).toString(8)).toBe('700');
    } finally {
      db.close();
    }
    expect(existsSync(spill)).toBe(false);
    if (!cwdTmpBefore) expect(existsSync(cwdTmp)).toBe(false);
  }, 60_000);

  it('the access journal and its SQLite -wal and -shm files are 0640 under umask 022', () => {
    const path = join(dir.path, 'journal-umask.sqlite');
    const j = new Journal(path);
    try {
      j.record({ auditor: 'test', action: 'query', params: {}, rows: 0 });
      for (const f of [path, `${path}-wal`, `${path}-shm`]) expect((lstatSync(f).mode & 0o777).toString(8), f).toBe('640');
    } finally {
      j.close();
    }
  });
});
