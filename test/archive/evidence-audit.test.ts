// What an auditor or a defence lawyer tries next (issue 15, points 1, 3
// and 4), each attack done to a copy of a real archive through the real
// CLI (`node bin/klaiwatch.ts archive ...`): questions with no answer and
// refused attempts journalled; a device whose clock is 400 days off found
// at its receive time; the access journal's rows deleted, its file deleted,
// or re-chained; the chain's tail cut (named with the heads the daily mail
// gave, caught here by a real SMTP server); the clock moved forward for a
// purge and back; an RFC 3161 token from a local `openssl ts` authority
// behind a tiny HTTP server on 127.0.0.1.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { Archive } from '../../archive/archive.ts';
import { parseLogLine } from '../../archive/parsers.ts';
import { Manifest, loadPrivateKey, rawPublicKey, type HoldEntry, type PurgeEntry, type SegmentEntry } from '../../archive/manifest.ts';
import { readManifest } from '../../archive/query.ts';
import { rowHash, type JournalRow } from '../../archive/journal.ts';
import { anchorDue, parseHeads, readTimeStampResponse } from '../../archive/anchor.ts';
import type { TrafficRecord } from '../../archive/record.ts';
import { PROJECT } from '../../sim/area.ts';
import { startMailCatcher, type MailCatcher } from '../../sim/mailcatcher.ts';
import { tempDir } from '../helpers/peers.ts';

const exec = promisify(execFile);
const dir = tempDir('evidence-audit');
const DAY = 86_400_000;
let pem: string;
let mail: MailCatcher;
let tsa: Server;
let tsaPort = 0;
const tsaDir = join(dir.path, 'tsa');
const NOW = Date.now();
/** When the record of the clockless router was received (two days ago), and its device time (400 days before that). */
const RECV = NOW - 2 * DAY;
const DEV = RECV - 400 * DAY;

async function cli(cfg: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'archive', ...args, '--config', cfg], { env: { ...process.env, SUDO_USER: '', ...env } });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function settings(archive: string, extra: { key?: string; tsa?: boolean } = {}): string {
  return [
    'area: { code: t13, name_th: สพป.ทดสอบ }',
    `inventory: ${join(dir.path, 'schools.yaml')}`,
    'influx: { url: "http://127.0.0.1:9" }',
    `mail: { smtp: { host: 127.0.0.1, port: ${mail.port}, security: none, timeout: 5s }, from: "klaiwatch@t13.example", officer: ["officer@t13.example"] }`,
    `traffic: { dir: ${archive}, signing_key: ${extra.key ?? join(dir.path, 'signing.pem')}, anchors: { mail_to: ["auditor@t13.example"]${extra.tsa ? `, tsa_url: "http://127.0.0.1:${tsaPort}/tsa", tsa_ca: ${join(tsaDir, 'ca.pem')}` : ''} } }`,
    '',
  ].join('\n');
}

/** A copy of the archive as it stands, with its own settings file: each attack gets one. */
function copy(name: string, extra: { key?: string; tsa?: boolean } = {}): { cfg: string; archive: string } {
  const base = join(dir.path, name);
  mkdirSync(base);
  const archive = join(base, 'archive');
  cpSync(join(dir.path, 'archive'), archive, { recursive: true });
  writeFileSync(join(base, 'area.yaml'), settings(archive, extra));
  return { cfg: join(base, 'area.yaml'), archive };
}

const mainCfg = () => join(dir.path, 'area.yaml');

function line(text: string, exporter: string, recvMs: number): TrafficRecord {
  return parseLogLine(text, { exporter, recvMs, utcOffsetMinutes: 420 });
}

async function ossl(...args: string[]): Promise<void> {
  await exec('openssl', args, { cwd: tsaDir });
}

beforeAll(async () => {
  pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  writeFileSync(join(dir.path, 'signing.pem'), pem);
  writeFileSync(join(dir.path, 'schools.yaml'), ['schools:', '  - code: "1036090101"', '    name_th: โรงเรียนบ้านหนองบัวแดง', '    devices:', '      - { id: r, kind: router, address: 127.0.0.2, profile: icmp-only }', ''].join('\n'));
  mail = await startMailCatcher();
  // A time-stamping authority: a CA, a TSA certificate for time stamping, `openssl ts -reply` behind HTTP on loopback.
  mkdirSync(tsaDir);
  await ossl('req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=klaiwatch test TSA CA', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  await ossl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'tsa.key', '-out', 'tsa.csr', '-subj', '/CN=klaiwatch test TSA');
  writeFileSync(join(tsaDir, 'ext.cnf'), 'extendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\n');
  await ossl('x509', '-req', '-in', 'tsa.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tsa.pem', '-days', '30', '-extfile', 'ext.cnf');
  writeFileSync(join(tsaDir, 'serial'), '01\n');
  writeFileSync(
    join(tsaDir, 'tsa.cnf'),
    ['[ tsa ]', 'default_tsa = tsa1', '[ tsa1 ]', `serial = ${tsaDir}/serial`, 'crypto_device = builtin', `signer_cert = ${tsaDir}/tsa.pem`, `certs = ${tsaDir}/tsa.pem`, `signer_key = ${tsaDir}/tsa.key`, 'signer_digest = sha256', 'default_policy = 1.2.3.4.1', 'digests = sha256', 'accuracy = secs:1', 'ordering = no', 'tsa_name = no', 'ess_cert_id_chain = no', 'ess_cert_id_alg = sha256', ''].join('\n'),
  );
  let n = 0;
  tsa = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const q = join(tsaDir, `q${++n}.tsq`);
      writeFileSync(q, Buffer.concat(chunks));
      execFile('openssl', ['ts', '-reply', '-config', join(tsaDir, 'tsa.cnf'), '-queryfile', q, '-out', `${q}.tsr`], (err) => {
        if (err) {
          res.writeHead(500).end(String(err));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/timestamp-reply' }).end(readFileSync(`${q}.tsr`));
      });
    });
  });
  await new Promise<void>((r) => tsa.listen(0, '127.0.0.1', () => r()));
  tsaPort = (tsa.address() as { port: number }).port;
  writeFileSync(mainCfg(), settings(join(dir.path, 'archive'), { tsa: true }));

  const a = await Archive.open({ dir: join(dir.path, 'archive'), key: loadPrivateKey(pem), retentionDays: 90, fsyncIntervalMs: 5 });
  const at = RECV;
  await a.append([
    { ...line('<30>Nov  1 08:00:05 dhcp dhcpd[10]: DHCPACK on 10.23.4.5 to aa:bb:cc:dd:ee:01 (ห้องคอม-01) via eth0', '127.0.0.7', at - 3600_000), dev_ms: at - 3600_000 - 2000 },
    // A RouterOS box without a real-time clock: its own time is 400 days before it was received.
    { ...line('<13>Jan  1 00:00:12 gw dhcp,info dhcp1 assigned 10.40.0.7 for 04:d3:b5:00:00:07 tablet-7', '127.0.0.5', at), dev_ms: DEV },
  ]);
  await a.seal();
  await a.close();
}, 120_000);

afterAll(async () => {
  await mail?.stop();
  await new Promise((r) => tsa?.close(r));
  dir.remove();
});

describe('questions without an answer, and refused attempts', () => {
  it('who with nobody known: exit 3, "nobody known", journalled as such with the account and the stated name', async () => {
    const r = await cli(mainCfg(), ['who', '--ip', '10.99.0.1', '--at', new Date(RECV).toISOString(), '--as', 'ผู้ตรวจสอบ ค.'], { SUDO_USER: 'somchai' });
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/nobody known: no DHCP lease/);
    expect(r.stderr).toMatch(/nobody known; journalled as ผู้ตรวจสอบ ค\., account \S+ \(sudo from somchai\)/);
    const j = await cli(mainCfg(), ['journal']);
    expect(j.stdout).toMatch(/\tผู้ตรวจสอบ ค\. \(\S+ via sudo from somchai@[^)]+\)\twho\tnobody known\t0 rows\t\{"ip":"10\.99\.0\.1"/);
  });

  it('an export that matches nothing: exit 3, a package saying 0 rows, journalled with its SHA-256', async () => {
    const out = join(dir.path, 'empty.tar');
    const r = await cli(mainCfg(), ['export', '--ip', '10.99.0.2', '--out', out, '--reference', 'หนังสือ ที่ 0002/2569']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/no records matched \(the package says so\)/);
    const x = join(dir.path, 'empty');
    mkdirSync(x);
    await exec('tar', ['-xf', out, '-C', x]);
    expect(JSON.parse(readFileSync(join(x, 'statement.json'), 'utf8'))).toMatchObject({ rows: 0, verification: { ok: true } });
    const sha = /SHA-256 ([0-9a-f]{64})/.exec(r.stdout)![1];
    expect((await cli(mainCfg(), ['journal'])).stdout).toMatch(new RegExp(`\\texport\\tno records matched\\t0 rows\\t.*\\tsha256 ${sha}`));
  });

  it('refused and failed attempts are journalled with the reason (they were not before)', async () => {
    const bad = await cli(mainCfg(), ['who', '--ip', '10.23.4', '--at', 'yesterday', '--as', 'ทนายจำเลย']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--ip "10\.23\.4" is not an IPv4 or IPv6 address/);
    const q = await cli(mainCfg(), ['query', '--ip', '10.0.0.1', '--from', 'yesterday', '--as', 'ทนายจำเลย']);
    expect(q.code).toBe(1);
    const v = await cli(mainCfg(), ['verify', '--anchors', join(dir.path, 'no-such-file'), '--as', 'ทนายจำเลย']);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/--anchors .*no-such-file: cannot read \(ENOENT\)/);
    // Without the signing key an export is refused, and that row cannot be signed: journal --verify says so.
    const { cfg } = copy('nokey', { key: join(dir.path, 'missing.pem') });
    const e = await cli(cfg, ['export', '--ip', '10.23.4.5', '--out', join(dir.path, 'nokey.tar'), '--reference', 'หนังสือ ที่ 3/2569']);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/export needs the archive's signing key/);
    const rows = (await cli(mainCfg(), ['journal'])).stdout.trimEnd().split('\n');
    expect(rows.at(-3)).toMatch(/\tทนายจำเลย \(\S+@[^)]+\)\twho\trefused: --ip "10\.23\.4" is not an IPv4 or IPv6 address\t0 rows\t/);
    expect(rows.at(-2)).toMatch(/\tquery\trefused: --from "yesterday": expected a time/);
    expect(rows.at(-1)).toMatch(/\tverify\trefused: --anchors .*no-such-file: cannot read \(ENOENT\)/);
    const nokey = await cli(cfg, ['journal', '--verify']);
    expect(nokey.stdout).toMatch(/FAULT journal row \d+: not signed \(written by account \S+, which could not read the archive's signing key\)/);
    expect((await cli(mainCfg(), ['journal', '--verify'])).code).toBe(0);
  });
});

describe('a device clock far off (a RouterOS box without a real-time clock)', () => {
  it('the segment keeps both ranges; who at the receive time finds it and says which clock matched and by how much the device is off', async () => {
    const seg = (await readManifest(join(dir.path, 'archive'))).find((e): e is SegmentEntry => e.type === 'segment')!;
    expect(seg.first_dev).toBe(DEV);
    expect(seg.last_dev).toBe(RECV - 3600_000 - 2000);
    expect(seg.first_recv).toBe(RECV - 3600_000);
    expect(seg.last_recv).toBe(RECV);
    const r = await cli(mainCfg(), ['who', '--ip', '10.40.0.7', '--at', new Date(RECV + 60_000).toISOString()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/lease {3}MAC 04:d3:b5:00:00:07 \(tablet-7\) from .* \[mikrotik-dhcp, 1 events, 127\.0\.0\.5; by receive time: the device's clock is 400\.0 days behind\]/);
    // The lease with a good clock on the same segment is on device time.
    const good = await cli(mainCfg(), ['who', '--ip', '10.23.4.5', '--at', new Date(RECV).toISOString()]);
    expect(good.stdout).toMatch(/\[isc-dhcp, 1 events, 127\.0\.0\.7; by device time\]/);
    // A query by time finds the record at its receive time too.
    const q = await cli(mainCfg(), ['query', '--ip', '10.40.0.7', '--from', new Date(RECV - 60_000).toISOString(), '--to', new Date(RECV + 60_000).toISOString(), '--format', 'json']);
    expect(JSON.parse(q.stdout).rows).toHaveLength(1);
  });
});

describe('the access journal is evidence against those it watches', () => {
  it('its rows are signed, and its head is in the manifest after an export', async () => {
    const out = join(dir.path, 'one.tar');
    const r = await cli(mainCfg(), ['export', '--ip', '10.23.4.5', '--from', new Date(RECV - DAY).toISOString(), '--to', new Date(RECV + DAY).toISOString(), '--out', out, '--reference', 'หนังสือ ที่ 0004/2569', '--as', 'ผู้ตรวจสอบ ก.']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/the journal's head is in manifest entry \d+/);
    const entries = await readManifest(join(dir.path, 'archive'));
    expect(entries.at(-1)).toMatchObject({ type: 'journal', reason: 'export' });
    const v = await cli(mainCfg(), ['verify']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^CHECKED access journal: \d+ rows, \d+ heads in the chain checked$/m);
  });

  it('the last rows deleted (the export among them): verify names it', async () => {
    const { cfg, archive } = copy('rows-deleted');
    const db = new DatabaseSync(join(archive, 'journal.sqlite'));
    const last = (db.prepare("SELECT max(id) AS n FROM access WHERE action = 'export'").get() as { n: number }).n;
    db.prepare('DELETE FROM access WHERE id >= ?').run(last);
    db.close();
    expect((await cli(cfg, ['journal', '--verify'])).stdout).toMatch(new RegExp(`FAULT journal head in manifest entry \\d+ \\(export, .*: \\d+ rows, row ${last} [0-9a-f]{16}…\\): the journal holds no row ${last}`));
    const v = await cli(cfg, ['verify']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(new RegExp(`^FAULT journal head in manifest entry \\d+ \\(export, [^)]*\\): the journal holds no row ${last} \\(\\d+ rows, the last ${last - 1}\\): rows were deleted from the end, or the file deleted and begun anew$`, 'm'));
    console.log(`rows deleted → ${v.stdout.split('\n').find((l) => l.startsWith('FAULT'))}`);
  });

  it('the journal file deleted: verify names it', async () => {
    const { cfg, archive } = copy('file-deleted');
    for (const f of readdirSync(archive)) if (f.startsWith('journal.sqlite')) rmSync(join(archive, f));
    const v = await cli(cfg, ['verify']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/^FAULT journal head in manifest entry \d+ \(export, [^)]*\): the journal is empty or missing \(the file was deleted or begun anew\)$/m);
    console.log(`file deleted → ${v.stdout.split('\n').find((l) => l.startsWith('FAULT'))}`);
    // Read directly (no CLI making a new journal first): missing.
    rmSync(join(archive, 'journal.sqlite'));
    for (const f of readdirSync(archive)) if (f.startsWith('journal.sqlite')) rmSync(join(archive, f));
    const { verifyArchive } = await import('../../archive/verify.ts');
    const r = await verifyArchive(archive);
    expect(r.faults.join('\n')).toMatch(/^journal\.sqlite: missing, but manifest entry \d+ \(export, .*\) says it held \d+ rows \(the journal was deleted\)$/m);
  });

  it('rewritten and re-chained (a row edited, every hash after it recomputed): verify names it', async () => {
    const { cfg, archive } = copy('rechained');
    const db = new DatabaseSync(join(archive, 'journal.sqlite'));
    const rows = db.prepare('SELECT * FROM access ORDER BY id').all() as unknown as JournalRow[];
    let prev = '0'.repeat(64);
    for (const r of rows) {
      const row = { ...r, prev, auditor: r.action === 'export' ? 'somebody else' : r.auditor };
      const { hash: _h, sig: _s, ...rest } = row;
      const hash = rowHash(rest);
      // Signed with another key: the attacker does not hold the archive's.
      const other = generateKeyPairSync('ed25519').privateKey;
      const { sign } = await import('node:crypto');
      db.prepare('UPDATE access SET auditor = ?, prev = ?, hash = ?, sig = ? WHERE id = ?').run(row.auditor, prev, hash, sign(null, Buffer.from(hash, 'hex'), other).toString('base64'), r.id);
      prev = hash;
    }
    db.close();
    const v = await cli(cfg, ['verify']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/^FAULT journal row 1: the signature is not valid for the archive's key \(forged or re-chained\)$/m);
    expect(v.stdout).toMatch(/^FAULT journal head in manifest entry \d+ \(export, [^)]*\): row \d+ now has hash [0-9a-f]{16}… \(the journal was rewritten and re-chained\)$/m);
    console.log(`re-chained → ${v.stdout.split('\n').filter((l) => /head in manifest/.test(l))[0]}`);
  });
});

describe('anchors outside the machine', () => {
  let headsFile: string;

  it('the daily head: kept in anchors/, time-stamped by the RFC 3161 authority, mailed to the officer and the auditor (a real SMTP server catches it)', async () => {
    const before = mail.received.length;
    const r = await cli(mainCfg(), ['anchor']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^klaiwatch chain head: area=t13 seq=\d+ hash=[0-9a-f]{64} entry_at=\S+ sent_at=\S+$/m);
    expect(r.stdout).toMatch(/time-stamped \S+ by http:\/\/127\.0\.0\.1:\d+\/tsa/);
    expect(r.stdout).toMatch(/mailed to officer@t13\.example, auditor@t13\.example/);
    const m = mail.received.at(-1)!;
    expect(mail.received.length).toBe(before + 1);
    expect((m.to as { text: string }).text).toMatch(/officer@t13\.example.*auditor@t13\.example/);
    expect(m.subject).toMatch(/chain head of the traffic-log archive/);
    const heads = parseHeads(m.text!, 'mail');
    const entries = await readManifest(join(dir.path, 'archive'));
    expect(heads).toMatchObject([{ seq: entries.at(-1)!.seq, hash: entries.at(-1)!.hash }]);
    headsFile = join(dir.path, 'heads.txt');
    writeFileSync(headsFile, m.text!);
    // The token: the authority's answer, stamping the head line, signed (openssl ts -verify against the CA).
    const tsr = readdirSync(join(dir.path, 'archive', 'anchors')).find((n) => n.endsWith('.tsr'))!;
    const stamp = readTimeStampResponse(readFileSync(join(dir.path, 'archive', 'anchors', tsr)));
    expect(stamp.status).toBe(0);
    expect(Math.abs(stamp.genTime - Date.now())).toBeLessThan(10 * 60_000);
    const v = await cli(mainCfg(), ['verify', '--anchors', headsFile]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^CHECKED entry \d+ time-stamped \S+ \(anchors\/head-\d+-\d{8}T\d{6}Z\.tsr, signature verified\)$/m);
    expect(v.stdout).toMatch(/^CHECKED entry \d+ matches the head sent out \S+ \(.*heads\.txt line \d+\)$/m);
  });

  it('a token checked against another CA, or a head file altered beside its token: named', async () => {
    const { cfg, archive } = copy('token-altered', { tsa: true });
    const other = join(dir.path, 'other-ca');
    mkdirSync(other);
    await exec('openssl', ['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(other, 'ca.key'), '-out', join(other, 'ca.pem'), '-subj', '/CN=another CA', '-days', '3']);
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(join(tsaDir, 'ca.pem'), join(other, 'ca.pem')));
    const v = await cli(cfg, ['verify']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/^FAULT anchors\/head-\d+-\S+\.tsr: the token's signature does not verify against .*other-ca\/ca\.pem \(openssl ts -verify: .*\)$/m);
    const txt = readdirSync(join(archive, 'anchors')).find((n) => n.endsWith('.txt'))!;
    writeFileSync(join(archive, 'anchors', txt), readFileSync(join(archive, 'anchors', txt), 'utf8').replace(/sent_at=\S+/, 'sent_at=2026-01-01T00:00:00.000Z'));
    const w = await cli(cfg, ['verify']);
    expect(w.stdout).toMatch(/^FAULT anchors\/head-\d+-\S+\.tsr: stamps [0-9a-f]{64}, not the head line beside it \([0-9a-f]{64}\): the head file was altered$/m);
  });

  it('the tail cut (the newest segment and its entries removed, anchors/ emptied): intact without the heads, named with --anchors', async () => {
    const { cfg, archive } = copy('tail-cut', { tsa: true });
    const manifest = join(archive, 'manifest.jsonl');
    const lines = readFileSync(manifest, 'utf8').trimEnd().split('\n');
    const entries = lines.map((l) => JSON.parse(l) as SegmentEntry);
    const seg = entries.findLastIndex((e) => e.type === 'segment');
    rmSync(join(archive, 'segments', entries[seg]!.file));
    writeFileSync(manifest, lines.slice(0, seg).join('\n') + '\n');
    rmSync(join(archive, 'anchors'), { recursive: true });
    // The journal's heads in the cut entries went with them: the rest still checks out.
    const quiet = await cli(cfg, ['verify']);
    expect(quiet.stdout).toMatch(/^intact: /m);
    const v = await cli(cfg, ['verify', '--anchors', headsFile]);
    expect(v.code).toBe(1);
    const fault = v.stdout.split('\n').find((l) => l.startsWith('FAULT anchor'))!;
    expect(fault).toMatch(new RegExp(`^FAULT anchor .*heads\\.txt line \\d+: the head sent out \\S+ says entry ${entries.at(-1)!.seq} \\(hash [0-9a-f]{64}\\) existed; the chain ends at entry ${seg - 1}: entries ${seg}–${entries.at(-1)!.seq} were removed \\(the tail of the chain was cut\\)$`));
    console.log(`tail cut → ${fault}`);
  });

  it('when a daily anchor is due', () => {
    const at = (s: string) => Date.parse(s);
    expect(anchorDue(null, '07:00', at('2026-06-03T00:00:00Z'))).toBe(true);
    // 07:00 Bangkok is 00:00 UTC: sent at 23:59 UTC the day before, due again at 00:00 UTC.
    expect(anchorDue(at('2026-06-02T23:59:00Z'), '07:00', at('2026-06-02T23:59:30Z'))).toBe(false);
    expect(anchorDue(at('2026-06-02T23:59:00Z'), '07:00', at('2026-06-03T00:00:00Z'))).toBe(true);
    expect(anchorDue(at('2026-06-03T00:01:00Z'), '07:00', at('2026-06-03T20:00:00Z'))).toBe(false);
    expect(anchorDue(at('2026-06-03T00:01:00Z'), '07:00', at('2026-06-04T00:01:00Z'))).toBe(true);
  });
});

describe("the chain's own times", () => {
  it('a purge written with the clock moved forward (dated 2027-03), then an entry dated back in 2026-11: verify names both', async () => {
    const { cfg, archive } = copy('clock-moved');
    const m = await Manifest.open(join(archive, 'manifest.jsonl'), createPrivateKey(pem), 90);
    const seg = m.entries.find((e): e is SegmentEntry => e.type === 'segment')!;
    const forward = Date.parse('2027-03-01T03:00:00Z');
    const purge = await m.append<PurgeEntry>({ type: 'purge', by: 'klaiwatch (retention)', at: forward, files: [seg.file], retention_days: 90 });
    rmSync(join(archive, 'segments', seg.file));
    await m.append<HoldEntry>({ type: 'hold', by: 'นายสมชาย', id: 'hold-x', from: NOW - DAY, to: NOW, sources: [], until: NOW + 30 * DAY, reason: 'คดีที่ 1/2569' });
    const v = await cli(cfg, ['verify']);
    expect(v.code).toBe(1);
    const faults = v.stdout.split('\n').filter((l) => l.startsWith('FAULT'));
    expect(faults).toContainEqual(expect.stringMatching(new RegExp(`^FAULT manifest entry ${purge.seq + 1} \\(hold\\): dated 2026-1\\d-\\S+, before entry ${purge.seq} \\(purge\\) dated 2027-03-01T03:00:00\\.000Z: entry times went backwards \\(the clock was moved\\)$`)));
    expect(faults).toContainEqual(expect.stringMatching(new RegExp(`^FAULT manifest entry ${purge.seq} \\(purge, dated 2027-03-01T03:00:00\\.000Z\\): removed ${seg.file}, received until \\S+; by the chain's own times \\(entry ${purge.seq + 1} \\(hold\\) after it is dated \\S+\\) it was at most 2\\.\\d days old, retention is 90 days$`)));
    expect(faults).toContainEqual(expect.stringMatching(new RegExp(`^FAULT manifest entry ${purge.seq} \\(purge\\): dated 2027-03-01T03:00:00\\.000Z, in the future of this machine's clock`)));
    for (const f of faults) console.log(`clock moved → ${f}`);
  });
});

describe('keys', () => {
  it('the journal rows carry signatures of the archive key', async () => {
    const db = new DatabaseSync(join(dir.path, 'archive', 'journal.sqlite'), { readOnly: true });
    const rows = db.prepare('SELECT sig FROM access').all() as { sig: string | null }[];
    db.close();
    expect(rows.length).toBeGreaterThan(3);
    expect(rows.filter((r) => r.sig !== null).length).toBe(rows.length);
    expect(rawPublicKey(loadPrivateKey(pem))).toMatch(/=$/);
    expect(existsSync(join(dir.path, 'archive', 'anchors', 'sent'))).toBe(true);
  });
});
