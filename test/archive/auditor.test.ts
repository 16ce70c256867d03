// The auditor's and the officer's commands, run as a user runs them
// (`node bin/klaiwatch.ts archive ...`) on an archive holding a school
// morning: a DHCP lease, a RADIUS accounting session, a hotspot login, a
// RouterOS NAT line; and segments of different ages for retention and holds.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync, mkdirSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { Archive } from '../../archive/archive.ts';
import { parseLogLine } from '../../archive/parsers.ts';
import { entryHash, loadPrivateKey, publicKeyFromRaw, rawPublicKey, signatureValid, type Entry } from '../../archive/manifest.ts';
import { planPurge, purge } from '../../archive/retention.ts';
import { readManifest } from '../../archive/query.ts';
import { verifyArchive } from '../../archive/verify.ts';
import type { TrafficRecord } from '../../archive/record.ts';
import { PROJECT } from '../../sim/area.ts';
import { tempDir } from '../helpers/peers.ts';

const exec = promisify(execFile);
const dir = tempDir('auditor');
const cfg = join(dir.path, 'area.yaml');
const archiveDir = join(dir.path, 'archive');
const DAY = 86_400_000;
const at = (local: string) => Date.parse(`${local}:00+07:00`);
let publicKey: string;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'archive', ...args, '--config', cfg]);
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function line(text: string, exporter: string, recvMs: number): TrafficRecord {
  return parseLogLine(text, { exporter, recvMs, utcOffsetMinutes: 420 });
}

beforeAll(async () => {
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  writeFileSync(join(dir.path, 'signing.pem'), pem);
  publicKey = rawPublicKey(createPrivateKey(pem));
  writeFileSync(join(dir.path, 'schools.yaml'), ['schools:', '  - code: "1036090101"', '    name_th: โรงเรียนบ้านหนองบัวแดง', '    devices:', '      - { id: r, kind: router, address: 127.0.0.2, profile: icmp-only }', ''].join('\n'));
  writeFileSync(cfg, ['area: { code: t, name_th: สพป.ทดสอบ }', 'inventory: schools.yaml', 'influx: { url: "http://127.0.0.1:9" }', 'traffic: { dir: archive, signing_key: signing.pem }', ''].join('\n'));
  const a = await Archive.open({ dir: archiveDir, key: loadPrivateKey(pem), retentionDays: 90, fsyncIntervalMs: 5 });
  const now = Date.now();
  // Three old segments: 100 and 95 days old (two sources), then one 10 days old.
  for (const [age, exporter] of [[100, '127.0.0.9'], [95, '127.0.0.8'], [10, '127.0.0.9']] as const) {
    await a.append([line(`<134>Jan  1 00:00:00 gw firewall,info forward: in:lan out:wan, proto TCP (SYN), 10.9.9.${age}:1000->1.1.1.1:443, len 60`, exporter, now - age * DAY)]);
    await a.seal();
  }
  // A school morning on 3 June 2026 (received then).
  const june = (hhmm: string) => at(`2026-06-03T${hhmm}`);
  await a.append([
    line('<30>Jun  3 08:00:05 dhcp dhcpd[10]: DHCPACK on 10.23.4.5 to aa:bb:cc:dd:ee:01 (ห้องคอม-01) via eth0', '127.0.0.7', june('08:00')),
    line('<30>Jun  3 08:30:00 dhcp dhcpd[10]: DHCPACK on 10.23.4.5 to aa:bb:cc:dd:ee:01 (ห้องคอม-01) via eth0', '127.0.0.7', june('08:30')),
    line('<30>Jun  3 12:00:00 dhcp dhcpd[10]: DHCPRELEASE of 10.23.4.5 from aa:bb:cc:dd:ee:01 via eth0', '127.0.0.7', june('12:00')),
    line('<30>Jun  3 13:00:00 dhcp dhcpd[10]: DHCPACK on 10.23.4.5 to aa:bb:cc:dd:ee:02 (ห้องคอม-02) via eth0', '127.0.0.7', june('13:00')),
    line('Acct-Status-Type = Start, User-Name = "somchai", Framed-IP-Address = 10.23.4.5, Calling-Station-Id = "AA-BB-CC-DD-EE-01", NAS-IP-Address = 10.23.0.1, Event-Timestamp = ' + june('08:05') / 1000, '127.0.0.6', june('08:05')),
    line('Acct-Status-Type = Stop, User-Name = "somchai", Framed-IP-Address = 10.23.4.5, Acct-Session-Time = 13200, NAS-IP-Address = 10.23.0.1, Event-Timestamp = ' + june('11:45') / 1000, '127.0.0.6', june('11:45')),
    line('2026-06-03T09:41:07+07:00 gw firewall,info forward: in:lan out:pppoe-out1, src-mac aa:bb:cc:dd:ee:01, proto TCP (ACK,PSH), 10.23.4.5:51000->47.241.18.42:443, NAT (10.23.4.5:51000->125.25.69.110:51000)->47.241.18.42:443, len 1400', '127.0.0.5', june('09:41')),
    line('hotspot,account,info,debug hs: malee (10.23.4.6): logged in', '127.0.0.5', june('09:00')),
  ]);
  await a.seal();
  // And one record still in the log.
  await a.append([line('<30>Jun  3 14:00:00 dhcp dhcpd[10]: DHCPACK on 10.23.4.9 to aa:bb:cc:dd:ee:09 via eth0', '127.0.0.7', june('14:00'))]);
  await a.close();
});

afterAll(() => dir.remove());

describe('who had an address', () => {
  it('answers from the DHCP lease and the RADIUS session, and names nobody before or after', async () => {
    const r = await cli('who', '--ip', '10.23.4.5', '--at', '2026-06-03T09:41', '--as', 'ผู้ตรวจสอบ ก.');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/lease {3}MAC aa:bb:cc:dd:ee:01 \(ห้องคอม-01\) from 2026-06-03T08:00:05\.000\+07:00 to 2026-06-03T12:00:00\.000\+07:00 \[isc-dhcp, 3 events/);
    expect(r.stdout).toMatch(/user {4}somchai MAC aa:bb:cc:dd:ee:01 from 2026-06-03T08:05:00\.000\+07:00 to 2026-06-03T11:45:00\.000\+07:00 \[radius-acct/);
    const later = await cli('who', '--ip', '10.23.4.5', '--at', '2026-06-03T13:30', '--format', 'json');
    const j = JSON.parse(later.stdout);
    expect(j.leases.map((b: { mac: string }) => b.mac)).toEqual(['aa:bb:cc:dd:ee:02']);
    expect(j.sessions).toEqual([]);
    const nobody = await cli('who', '--ip', '10.23.4.5', '--at', '2026-06-03T07:00');
    expect(nobody.code).toBe(3);
    expect(nobody.stdout).toMatch(/nobody known/);
  });

  it('through NAT: the public address and port lead to the inside address, then to the user', async () => {
    const r = await cli('who', '--ip', '125.25.69.110', '--port', '51000', '--at', '2026-06-03T09:41');
    expect(r.stdout).toMatch(/^125\.25\.69\.110:51000 was 10\.23\.4\.5:51000 inside \(NAT, mikrotik-firewall from 127\.0\.0\.5\)/);
    expect(r.stdout).toMatch(/user {4}somchai/);
  });

  it('a hotspot login answers for its address', async () => {
    const r = await cli('who', '--ip', '10.23.4.6', '--at', '2026-06-03T10:00', '--format', 'json');
    expect(JSON.parse(r.stdout).sessions).toMatchObject([{ user: 'malee', source: 'mikrotik-hotspot', to: null }]);
  });
});

describe('query and export', () => {
  it('query by address and time, as CSV; records not yet sealed are in the answer', async () => {
    const r = await cli('query', '--ip', '10.23.4.5', '--from', '2026-06-03', '--to', '2026-06-04', '--as', 'ผู้ตรวจสอบ ก.');
    expect(r.code).toBe(0);
    const lines = r.stdout.replace(/^\ufeff/, '').trimEnd().split('\r\n');
    expect(lines[0]).toMatch(/^recv_ms,dev_ms,kind,parser,exporter,/);
    expect(lines).toHaveLength(1 + 7);
    expect(r.stderr).toMatch(/^7 rows \(0 not yet sealed\) from 1 of \d+ segments read; journalled as ผู้ตรวจสอบ ก\./);
    const wal = await cli('query', '--ip', '10.23.4.9', '--format', 'json');
    expect(JSON.parse(wal.stdout).fromWal).toBe(1);
  });

  it('names what is wrong with a query', async () => {
    expect((await cli('query', '--ip', '10.23.4')).stderr).toMatch(/--ip "10\.23\.4" is not an IPv4 or IPv6 address/);
    expect((await cli('query', '--from', 'yesterday')).stderr).toMatch(/--from "yesterday": expected a time such as 2026-06-03T09:41/);
    expect((await cli('query')).stderr).toMatch(/say what to look for/);
    expect((await cli('query', '--ip', '10.0.0.1', '--proto', 'tcpp')).stderr).toMatch(/--proto "tcpp": expected tcp, udp, icmp or a protocol number/);
  });

  it('a question with no answer: "no records", exit 3, and journalled like any other (it crashed before)', async () => {
    const r = await cli('query', '--ip', '10.99.99.99', '--as', 'ผู้ตรวจสอบ ข.');
    expect(r.stderr).toMatch(/^no records: nothing in the archive matches/m);
    expect(r.stderr).not.toMatch(/TypeError|at /);
    expect(r.code).toBe(3);
    const j = await cli('journal');
    expect(j.stdout).toMatch(/ผู้ตรวจสอบ ข\..*10\.99\.99\.99|10\.99\.99\.99.*ผู้ตรวจสอบ ข\./);
  });

  it('export: one tar file with the rows, the question, the segments and signed entries, the verification; its SHA-256 printed and journalled', async () => {
    const out = join(dir.path, 'evidence.tar');
    const r = await cli('export', '--ip', '10.23.4.5', '--from', '2026-06-03', '--to', '2026-06-04', '--out', out, '--reference', 'หนังสือ สภ.ภูเขียว ที่ 0001/2569', '--as', 'ผู้ตรวจสอบ ก.');
    expect(r.code).toBe(0);
    const sha = /SHA-256 ([0-9a-f]{64})/.exec(r.stdout)![1];
    expect(createHash('sha256').update(readFileSync(out)).digest('hex')).toBe(sha);
    const x = join(dir.path, 'x');
    mkdirSync(x);
    await exec('tar', ['-xf', out, '-C', x]);
    const st = JSON.parse(readFileSync(join(x, 'statement.json'), 'utf8'));
    expect(st).toMatchObject({ made_by: 'ผู้ตรวจสอบ ก.', reference: 'หนังสือ สภ.ภูเขียว ที่ 0001/2569', rows: 7, verification: { ok: true }, archive_public_key: publicKey });
    expect(st.time_zone).toMatch(/UTC\+07:00/);
    expect(st.segments).toHaveLength(1);
    expect(readFileSync(join(x, 'rows.csv'), 'utf8').trimEnd().split('\r\n')).toHaveLength(8);
    // The vouching entries check out with the public key alone.
    const entries = readFileSync(join(x, 'manifest.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Entry);
    const seg = entries.find((e) => e.seq === st.segments[0].seq)!;
    expect(seg).toMatchObject({ type: 'segment', sha256: st.segments[0].sha256 });
    for (const e of entries) {
      expect(entryHash(e as unknown as Record<string, unknown>)).toBe(e.hash);
      expect(signatureValid(e, publicKeyFromRaw(publicKey))).toBe(true);
    }
  });
});

describe('holds, retention and purge', () => {
  it('a hold longer than two years, or without a reason, is refused', async () => {
    const far = new Date(Date.now() + 800 * DAY).toISOString().slice(0, 10);
    const r = await cli('hold', '--from', '2026-01-01', '--to', '2026-02-01', '--until', far, '--reason', 'x', '--by', 'officer');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--until may be at most 730 days \(2 years\) from now \(Computer Crime Act, section 26\); --reason must say why/);
  });

  it('purge removes what is past 90 days and not held; the hold and the purge are chain entries; verify stays intact', async () => {
    const entries = await readManifest(archiveDir);
    const segs = entries.filter((e) => e.type === 'segment');
    const [old100, old95, recent] = segs as { first_recv: number; last_recv: number; file: string }[];
    const until = new Date(Date.now() + 365 * DAY).toISOString().slice(0, 10);
    const iso = (t: number) => new Date(t).toISOString();
    const hold = await cli('hold', '--from', iso(old95!.first_recv - 1000), '--to', iso(old95!.last_recv + 1000), '--source', '127.0.0.8', '--until', until, '--reason', 'คำสั่งพนักงานเจ้าหน้าที่ ที่ 12/2569', '--by', 'นายสมชาย (นักวิชาการคอมพิวเตอร์)');
    expect(hold.code).toBe(0);
    // The morning of 3 June is older than 90 days too (unless the suite runs before September 2026): a case holds it.
    const june = await cli('hold', '--from', '2026-06-03', '--to', '2026-06-04', '--until', until, '--reason', 'คดีอาญาที่ 345/2569 สภ.ภูเขียว', '--by', 'นายสมชาย (นักวิชาการคอมพิวเตอร์)');
    expect(june.code).toBe(0);
    const dry = await cli('purge', '--dry-run');
    expect(dry.stdout).toMatch(/retention 90 days: 1 segments would go/);
    expect(dry.stdout).toContain(`would purge ${old100!.file}`);
    expect(dry.stdout).toContain(`held      ${old95!.file}`);
    const p = await cli('purge', '--by', 'นายสมชาย');
    expect(p.stdout).toMatch(/^purged 1 segments \(manifest entry \d+\); [12] kept by holds/);
    expect(existsSync(join(archiveDir, 'segments', old100!.file))).toBe(false);
    expect(existsSync(join(archiveDir, 'segments', old95!.file))).toBe(true);
    expect(existsSync(join(archiveDir, 'segments', recent!.file))).toBe(true);
    const after = await readManifest(archiveDir);
    expect(after.filter((e) => e.type === 'hold')).toMatchObject([
      { by: 'นายสมชาย (นักวิชาการคอมพิวเตอร์)', sources: ['127.0.0.8'] },
      { reason: 'คดีอาญาที่ 345/2569 สภ.ภูเขียว', sources: [] },
    ]);
    expect(after.filter((e) => e.type === 'purge')).toMatchObject([{ by: 'นายสมชาย', files: [old100!.file], retention_days: 90 }]);
    const v = await cli('verify');
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^intact: \d+ manifest entries, 3 segments/m);
    expect((await verifyArchive(archiveDir, publicKey)).ok).toBe(true);
  });

  it('a hold lifted before its date is a chain entry with who and why; then its records go at the next purge', async () => {
    const before = await readManifest(archiveDir);
    const first = before.find((e) => e.type === 'hold') as Entry & { id: string };
    const old95 = before.filter((e) => e.type === 'segment')[1] as Entry & { file: string };
    const bad = await cli('release', '--hold', 'hold-nothing', '--reason', 'คำสั่งยกเลิก', '--by', 'นายสมชาย');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('there is no hold hold-nothing (klaiwatch archive holds lists them)');
    const r = await cli('release', '--hold', first.id, '--reason', 'คำสั่งเพิกถอน ที่ 13/2569', '--by', 'นายสมชาย');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${first.id} released \\(manifest entry \\d+\\)`));
    const again = await cli('release', '--hold', first.id, '--reason', 'อีกครั้ง', '--by', 'นายสมชาย');
    expect(again.stderr).toContain(`hold ${first.id} is released already`);
    const list = await cli('holds');
    expect(list.stdout).toMatch(new RegExp(`^${first.id} {2}released {2}.*released .* by นายสมชาย: คำสั่งเพิกถอน ที่ 13/2569`, 'm'));
    expect(list.stdout).toMatch(/in force {2}records received 2026-06-0[23]/);
    const p = await cli('purge', '--by', 'นายสมชาย');
    expect(p.stdout).toMatch(/^purged 1 segments/);
    expect(existsSync(join(archiveDir, 'segments', old95.file))).toBe(false);
    expect((await verifyArchive(archiveDir, publicKey)).ok).toBe(true);
  });

  it('the 90-day floor holds whatever retention a caller passes', async () => {
    const plan = planPurge(await readManifest(archiveDir), 30, Date.now());
    expect(plan.expired).toEqual([]); // what is older is purged or held, the 10-day segment young
    expect(plan.cutoff).toBeLessThanOrEqual(Date.now() - 90 * DAY);
    const pem = readFileSync(join(dir.path, 'signing.pem'), 'utf8');
    const a = await Archive.open({ dir: archiveDir, key: loadPrivateKey(pem), retentionDays: 90, fsyncIntervalMs: 5 });
    const { entry } = await purge(a, 30, 'test', Date.now());
    expect(entry).toBeNull();
    await a.close();
  });
});

describe('keys', () => {
  it('keygen writes a new Ed25519 key readable only by its owner, prints its public half, and never overwrites one', async () => {
    const file = join(dir.path, 'new-key.pem');
    const r = await cli('keygen', '--out', file);
    expect(r.code).toBe(0);
    const pub = r.stdout.trim().split('\n').at(-1)!;
    expect(rawPublicKey(loadPrivateKey(readFileSync(file, 'utf8')))).toBe(pub);
    expect(statSync(file).mode & 0o777).toBe(0o400);
    const again = await cli('keygen', '--out', file);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/new-key\.pem exists: a signing key is never overwritten/);
  });
});

describe('the access journal', () => {
  it('recorded every query, who, export and verify with who ran it; its chain verifies, and an edited row is named', async () => {
    const list = await cli('journal');
    const rows = list.stdout.trimEnd().split('\n');
    // The refused queries are journalled too, with the reason.
    expect(rows.map((r) => r.split('\t')[3])).toEqual(['who', 'who', 'who', 'who', 'who', 'query', 'query', 'query', 'query', 'query', 'query', 'query', 'export', 'verify']);
    expect(rows.map((r) => r.split('\t')[4])).toEqual(['ok', 'ok', 'nobody known', 'ok', 'ok', 'ok', 'ok', expect.stringMatching(/^refused: --ip "10\.23\.4"/), expect.stringMatching(/^refused: --from "yesterday"/), 'refused: say what to look for: --ip, --port, --school, --user, --mac or a time range (--from/--to)', expect.stringMatching(/^refused: --proto "tcpp"/), 'no records', 'ok', 'ok']);
    expect(list.stdout).toMatch(/\tผู้ตรวจสอบ ก\. \(\w+@[^)]+\)\texport\tok\t7 rows\t.*"reference":"หนังสือ สภ\.ภูเขียว ที่ 0001\/2569".*\tsha256 [0-9a-f]{64}/);
    expect(list.stdout).toMatch(/\twho\t/);
    expect(list.stdout).toMatch(/\tverify\t/);
    expect((await cli('journal', '--verify')).code).toBe(0);
    const db = new DatabaseSync(join(archiveDir, 'journal.sqlite'));
    db.prepare("UPDATE access SET rows = 0 WHERE action = 'export'").run();
    db.prepare('DELETE FROM access WHERE id = 2').run();
    db.close();
    const v = await cli('journal', '--verify');
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/FAULT journal row 3: rows 2–2 are missing \(removed\)/);
    expect(v.stdout).toMatch(/FAULT journal row \d+: its content does not match its hash \(altered\)/);
  });
});
