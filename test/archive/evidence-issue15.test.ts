// Issue 15: an auditor's attack on the evidence, each finding reproduced on a
// real archive through the real CLI (`klaiwatch archive ...`), the shipped
// verifier run by node with the public key alone, and a real SMTP server on
// loopback catching the anchor mail as its raw source.
//   1. bytes that are not UTF-8 (raw_bytes) in a package: the verifier says OK
//   2. a changed row slipped in as {"proof":"unsealed"} and re-signed: FAIL, named
//   3. a segment file missing: query/who/export answer, say so, exit 2
//   4. a segment altered: query/who warn that its rows are not evidence, exit 2
//   5. `verify --anchors` reads the mail saved as .eml (quoted-printable)
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { Archive } from '../../archive/archive.ts';
import { parseLogLine } from '../../archive/parsers.ts';
import { loadPrivateKey, rawPublicKey } from '../../archive/manifest.ts';
import { rowHash } from '../../archive/merkle.ts';
import { decodeQuotedPrintable, headsOfBytes } from '../../archive/anchor.ts';
import { readManifest } from '../../archive/query.ts';
import type { TrafficRecord } from '../../archive/record.ts';
import { PROJECT } from '../../sim/area.ts';
import { startMailCatcher, type MailCatcher } from '../../sim/mailcatcher.ts';
import { tempDir } from '../helpers/peers.ts';

const exec = promisify(execFile);
const dir = tempDir('issue15');
let pem: string;
let publicKey: string;
let mail: MailCatcher;
const mailDir = join(dir.path, 'mail');
const at = (local: string) => Date.parse(`2026-06-03T${local}:00+07:00`);
// "ผู้ใช้" in TIS-620, as an old Thai device writes it: not UTF-8.
const TIS620 = Buffer.from([0xbc, 0xd9, 0xe9, 0xe3, 0xaa, 0xe9]);
const WAL_BYTES = Buffer.from([0xfe, 0xfd, 0x41, 0x00, 0xff]);

async function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(file, args, { maxBuffer: 16 << 20, env: { ...process.env, SUDO_USER: '' } });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const cli = (cfg: string, ...args: string[]) => run(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'archive', ...args, '--config', cfg]);
const verifier = (folder: string) => run(process.execPath, [join(folder, 'verify.mjs'), '--public-key', publicKey, folder]);

function line(text: string, exporter: string, recvMs: number): TrafficRecord {
  return parseLogLine(text, { exporter, recvMs, utcOffsetMinutes: 420 });
}

/** A copy of the archive with its own settings file: each attack gets one. */
function copy(name: string): { cfg: string; archive: string; base: string } {
  const base = join(dir.path, name);
  mkdirSync(base);
  const archive = join(base, 'archive');
  cpSync(join(dir.path, 'archive'), archive, { recursive: true });
  writeFileSync(join(base, 'area.yaml'), settings(archive));
  return { cfg: join(base, 'area.yaml'), archive, base };
}

function settings(archive: string): string {
  return [
    'area: { code: t15, name_th: สพป.ทดสอบ }',
    `inventory: ${join(dir.path, 'schools.yaml')}`,
    'influx: { url: "http://127.0.0.1:9" }',
    `mail: { smtp: { host: 127.0.0.1, port: ${mail.port}, security: none, timeout: 5s }, from: "klaiwatch@t15.example", officer: ["officer@t15.example"] }`,
    `traffic: { dir: ${archive}, signing_key: ${join(dir.path, 'signing.pem')} }`,
    '',
  ].join('\n');
}

async function exportTo(cfg: string, name: string): Promise<{ code: number; stdout: string; stderr: string; folder: string }> {
  const out = join(dir.path, `${name}.tar`);
  const r = await cli(cfg, 'export', '--ip', '10.23.4.5', '--from', '2026-06-03', '--to', '2026-06-04', '--reference', 'หนังสือ สภ.ภูเขียว ที่ 0015/2569', '--out', out, '--as', 'ผู้ตรวจสอบ ก.');
  const folder = join(dir.path, `${name}-unpacked`);
  if (r.code === 0 || r.code === 2) {
    mkdirSync(folder);
    await exec('tar', ['-xf', out, '-C', folder]);
  }
  return { ...r, folder };
}

let segA: string;
let segB: string;
let main: { cfg: string; archive: string };

beforeAll(async () => {
  pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  writeFileSync(join(dir.path, 'signing.pem'), pem);
  publicKey = rawPublicKey(createPrivateKey(pem));
  writeFileSync(join(dir.path, 'schools.yaml'), ['schools:', '  - code: "1036090101"', '    name_th: โรงเรียนบ้านหนองบัวแดง', '    devices:', '      - { id: r, kind: router, address: 127.0.0.2, profile: icmp-only }', ''].join('\n'));
  mail = await startMailCatcher({ dir: mailDir });
  const a = await Archive.open({ dir: join(dir.path, 'archive'), key: loadPrivateKey(pem), retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
  // Segment A: a lease, and a line from a TIS-620 device (its bytes kept in raw_bytes).
  const thai = line('<13>Jun  3 08:30:00 gw app: 10.23.4.5 tis620 somchai', '127.0.0.5', at('08:30'));
  await a.append([
    line('<30>Jun  3 08:00:05 dhcp dhcpd[10]: DHCPACK on 10.23.4.5 to aa:bb:cc:dd:ee:01 (ห้องคอม-01) via eth0', '127.0.0.7', at('08:00')),
    { ...thai, src_ip: '10.23.4.5', raw_bytes: Buffer.concat([Buffer.from('<13>Jun  3 08:30:00 gw app: 10.23.4.5 tis620 '), TIS620, Buffer.from(' somchai')]) },
  ]);
  segA = (await a.seal())!.file;
  // Segment B: the lease renewed at 10:00.
  await a.append([line('<30>Jun  3 10:00:05 dhcp dhcpd[10]: DHCPACK on 10.23.4.5 to aa:bb:cc:dd:ee:01 (ห้องคอม-01) via eth0', '127.0.0.7', at('10:00'))]);
  segB = (await a.seal())!.file;
  // Still in the write-ahead log, received after the seals: bytes that are not UTF-8 too.
  const late = line('<13>Jun  3 14:00:00 gw app: 10.23.4.5 late', '127.0.0.5', at('14:00'));
  await a.append([{ ...late, src_ip: '10.23.4.5', raw_bytes: Buffer.concat([Buffer.from('<13>Jun  3 14:00:00 gw app: 10.23.4.5 late '), WAL_BYTES]) }]);
  await a.close();
  writeFileSync(join(dir.path, 'area.yaml'), settings(join(dir.path, 'archive')));
  main = { cfg: join(dir.path, 'area.yaml'), archive: join(dir.path, 'archive') };
}, 120_000);

afterAll(async () => {
  await mail?.stop();
  dir.remove();
});

describe('issue 15: the evidence under attack', () => {
  let pkg: string;

  it('1. a package holding bytes that are not UTF-8 checks OK with its own verifier; rows.json and query --format json carry them as base64', async () => {
    const r = await exportTo(main.cfg, 'bytes');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    pkg = r.folder;
    const rows = JSON.parse(readFileSync(join(pkg, 'rows.json'), 'utf8')) as Record<string, unknown>[];
    const withBytes = rows.filter((x) => x.raw_bytes !== null);
    expect(withBytes).toHaveLength(2);
    for (const x of withBytes) expect(typeof x.raw_bytes).toBe('string');
    expect(withBytes.some((x) => Buffer.from(x.raw_bytes as string, 'base64').includes(TIS620))).toBe(true);
    expect(withBytes.some((x) => Buffer.from(x.raw_bytes as string, 'base64').includes(WAL_BYTES))).toBe(true);
    const v = await verifier(pkg);
    expect(v.stdout).toMatch(/^OK: .* 4 rows: 3 proven in sealed segments by Merkle proofs, 0 in whole segment files included .*, 1 from the unsealed log/m);
    expect(v.code, v.stdout).toBe(0);

    const q = await cli(main.cfg, 'query', '--ip', '10.23.4.5', '--from', '2026-06-03', '--format', 'json');
    expect(q.code, q.stderr).toBe(0);
    const got = JSON.parse(q.stdout) as { rows: Record<string, unknown>[] };
    const b = got.rows.filter((x) => x.raw_bytes !== null).map((x) => Buffer.from(x.raw_bytes as string, 'base64'));
    expect(b.some((x) => x.includes(TIS620)) && b.some((x) => x.includes(WAL_BYTES))).toBe(true);
  });

  it('2. the key holder slips a changed sealed row in as {"proof":"unsealed"} and re-signs the statement: the verifier fails, naming the row', async () => {
    const to = join(dir.path, 'attack-unsealed');
    cpSync(pkg, to, { recursive: true });
    const rows = JSON.parse(readFileSync(join(to, 'rows.json'), 'utf8')) as Record<string, unknown>[];
    const proofs = JSON.parse(readFileSync(join(to, 'proofs.json'), 'utf8')) as { rows: Record<string, unknown>[] };
    // The 08:00 lease (sealed in segment A) handed to another MAC.
    const i = rows.findIndex((x) => x.recv_ms === at('08:00'));
    expect(proofs.rows[i]!.proof).toBe('merkle');
    rows[i] = { ...rows[i], mac: 'de:ad:be:ef:00:01' };
    proofs.rows[i] = { row: i, row_hash: rowHash(rows[i]!).toString('hex'), proof: 'unsealed' };
    const rowsText = JSON.stringify(rows, null, 1) + '\n';
    const proofsText = JSON.stringify(proofs, null, 1) + '\n';
    writeFileSync(join(to, 'rows.json'), rowsText);
    writeFileSync(join(to, 'proofs.json'), proofsText);
    const st = JSON.parse(readFileSync(join(to, 'statement.json'), 'utf8'));
    st.rows_proven_by_merkle_proof--;
    st.rows_from_unsealed_log++;
    st.files['rows.json'] = { sha256: createHash('sha256').update(rowsText).digest('hex'), bytes: Buffer.byteLength(rowsText) };
    st.files['proofs.json'] = { sha256: createHash('sha256').update(proofsText).digest('hex'), bytes: Buffer.byteLength(proofsText) };
    const stText = Buffer.from(JSON.stringify(st, null, 2) + '\n');
    writeFileSync(join(to, 'statement.json'), stText);
    writeFileSync(join(to, 'statement.sig'), sign(null, createHash('sha256').update(stText).digest(), createPrivateKey(pem)).toString('base64') + '\n');
    const v = await verifier(to);
    expect(v.code, v.stdout).toBe(1);
    expect(v.stdout).toMatch(new RegExp(`^FAIL rows\\.json row ${i}: marked unsealed \\(no proof\\), but received 2026-06-03T01:00:00\\.000Z, at or before the last record of segment ${segB.replace(/\./g, '\\.')} \\(entry \\d+, 2026-06-03T03:00:00\\.000Z\\)`, 'm'));
    expect(v.stdout).toMatch(/^NOT VERIFIED: 1 check failed$/m);
    // The honest package's unsealed row (14:00, after the seals) still passes: checked in 1.
  });

  it('3. a segment file missing: query, who and export answer from the rest, name it, exit 2; the statement lists it', async () => {
    const c = copy('missing');
    rmSync(join(c.archive, 'segments', segA));
    const q = await cli(c.cfg, 'query', '--ip', '10.23.4.5', '--from', '2026-06-03');
    expect(q.stderr).not.toMatch(/No files found|\n\s+at /);
    expect(q.code, q.stderr).toBe(2);
    expect(q.stderr).toContain(`WARNING 1 segment file missing, skipped: this answer may lack their rows: ${segA} (klaiwatch archive verify names the fault)`);
    expect(q.stderr).toMatch(/^2 rows \(1 not yet sealed\)/m);
    const w = await cli(c.cfg, 'who', '--ip', '10.23.4.5', '--at', '2026-06-03T10:30');
    expect(w.code, w.stderr).toBe(2);
    expect(w.stdout).toMatch(/lease {3}MAC aa:bb:cc:dd:ee:01/);
    expect(w.stderr).toContain(`missing, skipped: this answer may lack their rows: ${segA}`);
    const e = await exportTo(c.cfg, 'missing');
    expect(e.code, e.stderr + e.stdout).toBe(2);
    const st = JSON.parse(readFileSync(join(e.folder, 'statement.json'), 'utf8'));
    expect(st.missing_segments.files).toEqual([segA]);
    expect(st.verification.ok).toBe(false);
  });

  it('4. a segment altered after its seal: query and who warn that its rows are not evidence and exit 2', async () => {
    const c = copy('altered');
    // First found intact, and remembered so (tmp/verified.json): the change below must still be seen.
    const before = await cli(c.cfg, 'query', '--ip', '10.23.4.5', '--from', '2026-06-03');
    expect(before.code, before.stderr).toBe(0);
    expect(readFileSync(join(c.archive, 'tmp', 'verified.json'), 'utf8')).toContain(segB);
    // One byte of the file's footer (the writer's name) changed: still a readable Parquet file, no longer the one signed.
    const f = join(c.archive, 'segments', segB);
    const b = readFileSync(f);
    const k = b.lastIndexOf('DuckDB');
    expect(k).toBeGreaterThan(0);
    b[k + 5] = 0x43; // DuckDB -> DuckDC
    writeFileSync(f, b);
    const warning = `WARNING segment ${segB}: its rows are not evidence: it does not match its signed hash`;
    const q = await cli(c.cfg, 'query', '--ip', '10.23.4.5', '--from', '2026-06-03');
    expect(q.code, q.stderr).toBe(2);
    expect(q.stderr).toContain(warning);
    expect(q.stderr).not.toContain(`segment ${segA}: its rows`);
    const w = await cli(c.cfg, 'who', '--ip', '10.23.4.5', '--at', '2026-06-03T10:30');
    expect(w.code, w.stderr).toBe(2);
    expect(w.stderr).toContain(warning);
    // A query the altered segment gives no rows to is not marked.
    const other = await cli(c.cfg, 'query', '--ip', '10.23.4.5', '--from', '2026-06-03T08:00', '--to', '2026-06-03T09:00');
    expect(other.code, other.stderr).toBe(0);
    expect(other.stderr).not.toContain('WARNING');
  });

  it('5. verify --anchors reads the anchor mail as the SMTP server received it (raw source, quoted-printable)', async () => {
    const before = readdirSync(mailDir).length;
    const r = await cli(main.cfg, 'anchor');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const emls = readdirSync(mailDir).filter((n) => n.endsWith('.eml'));
    expect(emls.length).toBe(before + 1);
    const eml = join(mailDir, emls.sort().at(-1)!);
    const raw = readFileSync(eml);
    expect(raw.toString('latin1')).toMatch(/quoted-printable/i);
    expect(raw.toString('latin1')).toMatch(/seq=3D\d+/);
    const head = (await readManifest(main.archive)).at(-1)!;
    const v = await cli(main.cfg, 'verify', '--anchors', eml);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(new RegExp(`^CHECKED entry ${head.seq} matches the head sent out \\S+ \\(.*\\.eml \\(quoted-printable decoded\\) line \\d+\\)$`, 'm'));
  });

  it('5. quoted-printable: soft breaks and =XX undone; a plain head line is read as it is, not decoded', () => {
    expect(decodeQuotedPrintable(Buffer.from('seq=3D14 ha=\r\nsh=3D=E0=B8=81 x=\n=zz=')).toString('utf8')).toBe('seq=14 hash=ก x=zz=');
    const hash = 'a'.repeat(64);
    expect(headsOfBytes(Buffer.from(`klaiwatch chain head: area=t seq=14 hash=${hash}\n`), 'heads.txt')).toMatchObject([{ seq: 14, hash, source: 'heads.txt line 1' }]);
    expect(headsOfBytes(Buffer.from(`chain head: area=3Dt seq=3D14 hash=3D${hash.slice(0, 30)}=\r\n${hash.slice(30)} sent_at=3D2026-06-03T00:00:00.000Z\r\n`), 'm.eml')).toMatchObject([{ seq: 14, hash, sentAt: Date.parse('2026-06-03T00:00:00Z') }]);
    expect(() => headsOfBytes(Buffer.from('nothing here =3D\n'), 'x.eml')).toThrow(/x\.eml: holds no chain head/);
  });
});
