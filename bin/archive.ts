// `klaiwatch archive ACTION`: the auditor's and the officer's commands on the
// traffic-log archive. The work is in archive/; this file reads
// options, prints, and sets the exit status.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { isIP } from 'node:net';
import type { Config } from '../config/load.ts';
import { protoNumber } from '../archive/record.ts';
import { QueryError, type ArchiveQuery } from '../archive/query.ts';
import { jsonRow, rowsCsv } from '../archive/export.ts';
import { auditContext, auditedExport, auditedQuery, auditedVerify, auditedWho, journalRefusal, parseTime, publicKeyArg, AuditError, type AuditContext } from '../archive/auditor.ts';
import { Manifest, generateSigningKey, loadPrivateKey, publicKeyFromRaw, rawPublicKey } from '../archive/manifest.ts';
import { journalEntries } from '../archive/journal.ts';
import { AnchorError, anchorHead, readHeadsFile, sendAnchorMail, anchorMail } from '../archive/anchor.ts';
import { HoldError, holdStates, placeHold, planPurge, purge, releaseHold } from '../archive/retention.ts';
import { liveSegments, readManifest } from '../archive/query.ts';
import { walBacklog } from '../archive/wal.ts';
import { describeRecovery } from '../archive/verify.ts';
import { compactSegments, mergeSegments, MERGE_MAX_ROWS, planCompaction } from '../archive/archive.ts';
import { serveArchive, ServeError } from '../archive/ingest-serve.ts';
import { startHealthServer } from './health-server.ts';
import { createLogger } from '../config/log.ts';
import { installProcessHandlers, leaveSupervisor, reportHealth, stopSignal, supervised, type PartMessage } from './supervisor.ts';
import { checkOutputPath } from '../config/preflight.ts';

export const ARCHIVE_USAGE = `klaiwatch archive ACTION [options] --config FILE

  serve   (the traffic-log receivers: syslog, NetFlow/IPFIX; GET /healthz on
          traffic.http; \`klaiwatch run\` starts this as one of its parts)
  query   --ip X [--side src|dst|either] [--peer Y] [--port P] [--proto tcp|udp|N]
          [--school CODE] [--user U] [--mac M] [--from T] [--to T] [--limit N]
          [--format csv|json] [--as NAME]
  who     --ip X --at T [--port P (X is a public NAT address)] [--as NAME]
  export  (the query options) --out FILE.tar --reference "หนังสือที่ ..." [--as NAME]
  verify  [--public-key KEY|FILE] [--anchors FILE (chain heads as the daily mail gave them)] [--as NAME]
  anchor  (send the chain head now: kept in anchors/, time-stamped when
          traffic.anchors.tsa_url is set, mailed to the officer and
          traffic.anchors.mail_to; \`archive serve\` does this daily)
  hold    --from T --to T --until DATE --reason TEXT --by NAME [--source IP ...]
  holds   (every hold: in force, expired or released)
  release --hold ID --reason TEXT --by NAME   (lift a hold before its date)
  purge   --by NAME [--dry-run]
  compact [--dry-run]  (merge each finished day's segments into one; the
          collector does this every six hours by itself)
  status
  journal [--verify]
  keygen  --out FILE   (a new Ed25519 signing key; never overwrites)

Times: 2026-06-03T09:41 or 2026-06-03 are Asia/Bangkok; or ISO-8601 with a zone.
Every query, who, export and verify is written to the access journal, with
the system account that ran it (and SUDO_USER); refused and failed attempts
too, with the reason. Exit 3: nothing matched (journalled as such).`;

export const ARCHIVE_OPTIONS = {
  ip: { type: 'string' },
  side: { type: 'string' },
  peer: { type: 'string' },
  port: { type: 'string' },
  proto: { type: 'string' },
  school: { type: 'string' },
  user: { type: 'string' },
  mac: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  at: { type: 'string' },
  limit: { type: 'string' },
  format: { type: 'string' },
  as: { type: 'string' },
  out: { type: 'string', short: 'o' },
  reference: { type: 'string' },
  'public-key': { type: 'string' },
  anchors: { type: 'string' },
  until: { type: 'string' },
  reason: { type: 'string' },
  by: { type: 'string' },
  source: { type: 'string', multiple: true },
  hold: { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  verify: { type: 'boolean', default: false },
} as const;

type Values = Record<string, string | boolean | string[] | undefined>;

export class ArchiveUsageError extends Error {}

const str = (v: Values, k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);

function int(v: Values, k: string, min: number, max: number): number | undefined {
  const s = str(v, k);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < min || n > max) throw new ArchiveUsageError(`--${k} ${JSON.stringify(s)}: expected a whole number from ${min} to ${max}`);
  return n;
}

function queryOf(v: Values): ArchiveQuery {
  const q: ArchiveQuery = {};
  const side = str(v, 'side');
  if (side !== undefined && !['src', 'dst', 'either'].includes(side)) throw new ArchiveUsageError(`--side ${JSON.stringify(side)}: expected src, dst or either`);
  if (str(v, 'ip')) q.ip = str(v, 'ip')!;
  if (side) q.side = side as ArchiveQuery['side'];
  if (str(v, 'peer')) q.peer = str(v, 'peer')!;
  const port = int(v, 'port', 0, 65535);
  if (port !== undefined) q.port = port;
  const proto = str(v, 'proto');
  if (proto !== undefined) {
    const n = protoNumber(proto);
    if (n === null) throw new ArchiveUsageError(`--proto ${JSON.stringify(proto)}: expected tcp, udp, icmp or a protocol number`);
    q.proto = n;
  }
  for (const k of ['school', 'user', 'mac'] as const) if (str(v, k)) q[k] = str(v, k)!;
  if (str(v, 'from')) q.from = parseTime(str(v, 'from')!, '--from');
  if (str(v, 'to')) q.to = parseTime(str(v, 'to')!, '--to');
  const limit = int(v, 'limit', 1, 100_000_000);
  if (limit !== undefined) q.limit = limit;
  if (!q.ip && !q.port && !q.school && !q.user && !q.mac && q.from === undefined) throw new ArchiveUsageError('say what to look for: --ip, --port, --school, --user, --mac or a time range (--from/--to)');
  return q;
}

/** The name the person states (--as); who they are is what the operating system says (journal.ts systemIdentity). */
const who = (v: Values) => (str(v, 'as') ?? '').trim();

/** The options as given, for the journal row of an attempt refused before its work began. */
const given = (v: Values) => Object.fromEntries(Object.entries(v).filter(([k, x]) => x !== undefined && x !== false && !['as', 'config'].includes(k)));

/** Parses an audited action's arguments; a refusal is journalled (with the reason) before it is reported. */
function parsed<T>(ctx: AuditContext, action: string, v: Values, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    journalRefusal(ctx, action, given(v), err, 'refused');
    throw err;
  }
}

const days = (ms: number) => (Math.abs(ms) >= 86_400_000 ? `${(Math.abs(ms) / 86_400_000).toFixed(1)} days` : age(Math.abs(ms)));
/** Which clock a range is on, and the device's offset when it is far off. */
function clockNote(b: { clock?: 'device' | 'receive'; device_offset_ms?: number | null }): string {
  if (b.clock === 'receive') return `; by receive time: the device's clock is ${days(b.device_offset_ms ?? 0)} ${(b.device_offset_ms ?? 0) < 0 ? 'behind' : 'ahead'}`;
  return '; by device time';
}
const withRecoveries = (r: readonly string[]) => (r.length === 0 ? '' : `, with ${r.length} ${r.length === 1 ? 'recovery' : 'recoveries'}: ${r.join('; ')}`);
const age = (ms: number) => (ms < 120_000 ? `${Math.round(ms / 1000)} s` : ms < 7_200_000 ? `${Math.round(ms / 60_000)} min` : `${(ms / 3_600_000).toFixed(1)} h`);
const iso = (t: number) => new Date(t + 7 * 3_600_000).toISOString().replace('Z', '+07:00');

function openManifest(config: Config): Promise<Manifest> {
  const t = config.settings.traffic!;
  const base = dirname(config.file);
  return Manifest.open(join(resolve(base, t.dir), 'manifest.jsonl'), loadPrivateKey(readFileSync(resolve(base, t.signing_key), 'utf8')), Math.round(t.retention / 86_400_000));
}

/**
 * WARNING lines for an answer that may be short (segment files missing) or
 * rests on segments changed since their seal; true when there was any (exit 2).
 */
function warnSegments(r: { missing: readonly string[]; altered: readonly string[] }): boolean {
  if (r.missing.length) console.error(`WARNING ${r.missing.length} segment ${r.missing.length === 1 ? 'file' : 'files'} missing, skipped: this answer may lack their rows: ${r.missing.join(', ')} (klaiwatch archive verify names the fault)`);
  for (const f of r.altered) console.error(`WARNING segment ${f}: its rows are not evidence: it does not match its signed hash (klaiwatch archive verify names the fault)`);
  return r.missing.length + r.altered.length > 0;
}

const journalledAs = (ctx: AuditContext) => `${ctx.auditor ? `${ctx.auditor}, ` : ''}account ${ctx.identity.account}${ctx.identity.sudo ? ` (sudo from ${ctx.identity.sudo})` : ''}${ctx.journal.signing ? '' : ' (unsigned: the signing key cannot be read)'}`;

async function parsedAsync<T>(ctx: AuditContext, action: string, v: Values, parse: () => Promise<T>): Promise<T> {
  try {
    return await parse();
  } catch (err) {
    journalRefusal(ctx, action, given(v), err, 'refused');
    throw err;
  }
}

export async function archiveCommand(action: string | undefined, v: Values, load: () => Config): Promise<number> {
  try {
    return await run(action, v, load);
  } catch (err) {
    if (err instanceof QueryError || err instanceof AuditError || err instanceof HoldError || err instanceof AnchorError) throw new ArchiveUsageError(err.message);
    throw err;
  }
}

async function run(action: string | undefined, v: Values, load: () => Config): Promise<number> {
  switch (action) {
    case 'serve': {
      const config = load();
      const log = createLogger(config.settings.log.level);
      const counters = installProcessHandlers(log, 'archive');
      try {
        return await serveArchive(config, {
          log,
          supervised: supervised(),
          startHealthServer,
          reportHealth,
          sendTraffic: (fields) => {
            if (process.connected) process.send!({ type: 'traffic', fields: { ...fields }, time: Date.now() } satisfies PartMessage, undefined, {}, () => undefined);
          },
          stopped: stopSignal(log),
          counters: counters as unknown as Record<string, number>,
        });
      } catch (err) {
        // A receiver that cannot start says why in one line (no usage text: the command was right) and exits 1.
        if (err instanceof ServeError) {
          console.error(`klaiwatch archive serve: ${err.message}`);
          return 1;
        }
        throw err;
      } finally {
        leaveSupervisor();
      }
    }
    case 'keygen': {
      const out = str(v, 'out');
      if (!out) throw new ArchiveUsageError('keygen needs --out FILE');
      checkOutputPath('--out', out, 'file-to-write');
      let publicKey: string;
      try {
        ({ publicKey } = generateSigningKey(out));
      } catch (err) {
        throw new ArchiveUsageError((err as Error).message);
      }
      console.log(`${out}: new Ed25519 signing key (mode 0400). Public key, to keep apart and give to auditors:\n${publicKey}`);
      return 0;
    }
    case 'query': {
      const ctx = auditContext(load(), who(v));
      const { format, q } = parsed(ctx, 'query', v, () => {
        const format = str(v, 'format') ?? 'csv';
        if (!['csv', 'json'].includes(format)) throw new ArchiveUsageError(`--format ${JSON.stringify(format)}: expected csv or json`);
        return { format, q: queryOf(v) };
      });
      const r = await auditedQuery(ctx, q);
      process.stdout.write(format === 'csv' ? rowsCsv(r.rows) : JSON.stringify({ rows: r.rows.map(jsonRow), segments: r.segments, fromWal: r.fromWal }, null, 1) + '\n');
      const warned = warnSegments(r);
      if (r.rows.length === 0) {
        console.error(`no records: nothing in the archive matches (${r.segmentsRead} segments and the write-ahead log read); journalled as ${journalledAs(ctx)}`);
        return warned ? 2 : 3;
      }
      console.error(`${r.rows.length} rows (${r.fromWal} not yet sealed) from ${r.segments.length} of ${r.segmentsRead} segments read; journalled as ${journalledAs(ctx)}`);
      return warned ? 2 : 0;
    }
    case 'who': {
      const ctx = auditContext(load(), who(v));
      const { ip, time, port } = parsed(ctx, 'who', v, () => {
        const ip = str(v, 'ip');
        const at = str(v, 'at');
        if (!ip || !at) throw new ArchiveUsageError('who needs --ip and --at');
        if (isIP(ip) === 0) throw new ArchiveUsageError(`--ip ${JSON.stringify(ip)} is not an IPv4 or IPv6 address`);
        return { ip, time: parseTime(at, '--at'), port: int(v, 'port', 0, 65535) };
      });
      const a = await auditedWho(ctx, ip, time, port);
      const found = a.leases.length + a.sessions.length > 0;
      if (str(v, 'format') === 'json') {
        console.log(JSON.stringify(a.nat ? { ...a, nat: { ...a.nat, record: jsonRow(a.nat.record) } } : a, null, 1));
        const warned = warnSegments(a);
        if (!found) console.error(`nobody known; journalled as ${journalledAs(ctx)}`);
        return warned ? 2 : found ? 0 : 3;
      }
      if (a.nat) console.log(`${a.nat.public}:${a.nat.port} was ${a.nat.inside}${a.nat.insidePort !== null ? `:${a.nat.insidePort}` : ''} inside (NAT, ${a.nat.record.parser} from ${a.nat.record.exporter})`);
      else if (port !== undefined) console.log(`no NAT translation of ${ip}:${port} within 15 minutes of ${iso(a.at)}: answering for ${ip} itself`);
      console.log(`${a.ip} at ${iso(a.at)}:`);
      if (a.leases.length === 0 && a.sessions.length === 0) console.log('  nobody known: no DHCP lease, RADIUS or hotspot session in the archive covers that moment');
      for (const b of a.leases) console.log(`  lease   MAC ${b.mac ?? '?'}${b.client ? ` (${b.client})` : ''} from ${iso(b.from)} to ${b.to === null ? 'still bound' : iso(b.to)} [${b.source}, ${b.events} events, ${b.exporter}${b.school ? `, school ${b.school}` : ''}${clockNote(b)}]`);
      for (const b of a.sessions) console.log(`  user    ${b.user}${b.mac ? ` MAC ${b.mac}` : ''} from ${iso(b.from)} to ${b.to === null ? 'still logged in' : iso(b.to)} [${b.source}, ${b.exporter}${clockNote(b)}]`);
      const warned = warnSegments(a);
      if (!found) console.error(`nobody known; journalled as ${journalledAs(ctx)}`);
      return warned ? 2 : found ? 0 : 3;
    }
    case 'export': {
      const ctx = auditContext(load(), who(v));
      const { out, q } = parsed(ctx, 'export', v, () => {
        const out = str(v, 'out');
        if (!out) throw new ArchiveUsageError('export needs --out FILE.tar');
        checkOutputPath('--out', out, 'file-to-write');
        return { out, q: queryOf(v) };
      });
      const r = await auditedExport(ctx, q, out, str(v, 'reference') ?? '');
      console.log(`${out}: ${r.rows === 0 ? 'no records matched (the package says so)' : `${r.rows} rows`}, ${r.bytes} bytes; archive verification: ${r.verify.ok ? `intact${withRecoveries(r.verify.recoveries)}` : `${r.verify.faults.length} faults`}`);
      console.log(`SHA-256 ${r.sha256}`);
      console.error(`journalled as ${journalledAs(ctx)}${r.journalEntry !== null ? `; the journal's head is in manifest entry ${r.journalEntry}` : ''}`);
      return r.verify.ok ? (r.rows === 0 ? 3 : 0) : 2;
    }
    case 'verify': {
      const ctx = auditContext(load(), who(v));
      const { key, heads } = await parsedAsync(ctx, 'verify', v, async () => {
        const key = str(v, 'public-key');
        const file = str(v, 'anchors');
        return { key: key ? publicKeyArg(key) : undefined, heads: file ? await readHeadsFile(file) : undefined };
      });
      const r = await auditedVerify(ctx, key, heads);
      for (const f of r.faults) console.log(`FAULT ${f}`);
      for (const x of r.recoveries) console.log(`RECOVERY ${x}`);
      for (const x of r.notes) console.log(`CHECKED ${x}`);
      console.log(`${r.ok ? `intact${r.recoveries.length ? `, with ${r.recoveries.length} ${r.recoveries.length === 1 ? 'recovery' : 'recoveries'} (RECOVERY above)` : ''}` : 'NOT INTACT'}: ${r.entries} manifest entries, ${r.segments} segments; chain head ${r.head ? `${r.head.seq} ${r.head.hash}` : '-'}; key ${r.publicKey ?? '-'}${ctx.trustedKey || key ? '' : ' (no trusted key given: checked against the key the archive names)'}`);
      return r.ok ? 0 : 1;
    }
    case 'hold': {
      const config = load();
      for (const k of ['from', 'to', 'until', 'reason', 'by']) if (!str(v, k)) throw new ArchiveUsageError(`hold needs --${k}`);
      const m = await openManifest(config);
      const h = await placeHold({ manifest: m, segmentDir: '' }, { from: parseTime(str(v, 'from')!, '--from'), to: parseTime(str(v, 'to')!, '--to'), until: parseTime(str(v, 'until')!, '--until'), reason: str(v, 'reason')!, by: str(v, 'by')!, sources: (v.source as string[] | undefined) ?? [] });
      console.log(`${h.id}: records received ${iso(h.from)} – ${iso(h.to)}${h.sources.length ? ` from ${h.sources.join(', ')}` : ''} kept until ${iso(h.until)} (manifest entry ${h.seq})`);
      return 0;
    }
    case 'holds': {
      const config = load();
      const states = holdStates(await readManifest(resolve(dirname(config.file), config.settings.traffic!.dir)), Date.now());
      for (const { hold: h, state, release } of states) {
        console.log(`${h.id}  ${state.padEnd(8)}  records received ${iso(h.from)} – ${iso(h.to)}${h.sources.length ? ` from ${h.sources.join(', ')}` : ''} until ${iso(h.until)}; ${h.reason} (${h.by}, entry ${h.seq})${release ? `; released ${iso(release.at)} by ${release.by}: ${release.reason} (entry ${release.seq})` : ''}`);
      }
      if (states.length === 0) console.log('no holds');
      return 0;
    }
    case 'release': {
      const config = load();
      for (const k of ['hold', 'reason', 'by']) if (!str(v, k)) throw new ArchiveUsageError(`release needs --${k}`);
      const m = await openManifest(config);
      const e = await releaseHold({ manifest: m, segmentDir: '' }, { id: str(v, 'hold')!, reason: str(v, 'reason')!, by: str(v, 'by')! });
      console.log(`${e.hold} released (manifest entry ${e.seq}); its records go at the next purge once past retention, unless another hold keeps them`);
      return 0;
    }
    case 'purge': {
      const config = load();
      const t = config.settings.traffic!;
      const days = Math.round(t.retention / 86_400_000);
      if (v['dry-run']) {
        const plan = planPurge(await readManifest(resolve(dirname(config.file), t.dir)), days, Date.now());
        console.log(`retention ${days} days: ${plan.expired.length} segments would go (received before ${iso(plan.cutoff)}), ${plan.held.length} kept by holds`);
        for (const s of plan.expired) console.log(`  would purge ${s.file}`);
        for (const { segment, hold } of plan.held) console.log(`  held      ${segment.file} by ${hold.id} until ${iso(hold.until)}`);
        return 0;
      }
      if (!str(v, 'by')) throw new ArchiveUsageError('purge needs --by NAME (it is written into the manifest)');
      const m = await openManifest(config);
      const { entry, plan } = await purge({ manifest: m, segmentDir: join(resolve(dirname(config.file), t.dir), 'segments') }, days, str(v, 'by')!);
      console.log(entry ? `purged ${entry.files.length} segments (manifest entry ${entry.seq}); ${plan.held.length} kept by holds` : `nothing past ${days} days to purge; ${plan.held.length} kept by holds`);
      return 0;
    }
    case 'compact': {
      const config = load();
      const dir = resolve(dirname(config.file), config.settings.traffic!.dir);
      const m = await openManifest(config);
      if (v['dry-run']) {
        const groups = planCompaction(liveSegments(m.entries), Date.now());
        for (const g of groups) console.log(`would merge ${g.length} segments (${g.reduce((n, s) => n + s.rows, 0)} records) of ${iso(g[0]!.first_recv).slice(0, 10)}: ${g.map((s) => s.file).join(' ')}`);
        console.log(`${groups.length} merges planned`);
        return 0;
      }
      const { merged, refused } = await compactSegments(m, Date.now(), MERGE_MAX_ROWS, (g) => mergeSegments(m, join(dir, 'segments'), g));
      for (const e of merged) console.log(`merged ${e.merged_from!.length} segments into ${e.file} (${e.rows} records, ${e.bytes} bytes; manifest entry ${e.seq})`);
      for (const why of refused) console.log(`NOT MERGED ${why}`);
      console.log(`${merged.length} merges done${refused.length ? `, ${refused.length} refused` : ''}`);
      return refused.length ? 1 : 0;
    }
    case 'status': {
      const config = load();
      const dir = resolve(dirname(config.file), config.settings.traffic!.dir);
      const entries = await readManifest(dir);
      const segs = liveSegments(entries);
      const wal = await walBacklog(join(dir, 'wal'));
      const rows = segs.reduce((n, s) => n + s.rows, 0);
      const bytes = segs.reduce((n, s) => n + s.bytes, 0);
      console.log(`${dir}: ${segs.length} segments, ${rows} records, ${bytes} bytes (${rows ? (bytes / rows).toFixed(1) : '-'} bytes per record)`);
      console.log(`write-ahead log: ${wal.records} records waiting to be sealed in ${wal.files} files${wal.oldestRecv === null ? '' : `, the oldest received ${iso(wal.oldestRecv)} (${age(Date.now() - wal.oldestRecv)} ago)`}`);
      for (const e of entries) if (e.type === 'recovery') console.log(`recovery ${describeRecovery(e)}`);
      if (segs.length) console.log(`oldest received ${iso(segs[0]!.first_recv)}, newest ${iso(segs.at(-1)!.last_recv)}; chain head ${entries.at(-1)!.seq} ${entries.at(-1)!.hash}`);
      return 0;
    }
    case 'journal': {
      const ctx = auditContext(load(), who(v));
      if (v.verify) {
        const entries = await readManifest(ctx.dir);
        const genesis = entries[0];
        const pub = str(v, 'public-key') ? publicKeyArg(str(v, 'public-key')!) : ctx.key ? rawPublicKey(ctx.key) : genesis?.type === 'genesis' ? genesis.public_key : null;
        const anchors = journalEntries(entries);
        const r = ctx.journal.verify(pub ? publicKeyFromRaw(pub) : null, anchors);
        for (const f of r.faults) console.log(`FAULT ${f}`);
        console.log(`${r.ok ? 'intact' : 'NOT INTACT'}: ${r.rows} journal rows${r.unsignedLegacy ? ` (${r.unsignedLegacy} from before rows were signed)` : ''}; ${anchors.length} heads in the manifest checked${pub ? '' : '; signatures not checked (no key)'}`);
        return r.ok ? 0 : 1;
      }
      for (const r of ctx.journal.list()) {
        const person = `${r.auditor ? `${r.auditor} ` : ''}(${r.os_user}${r.sudo_user ? ` via sudo from ${r.sudo_user}` : ''}@${r.host})`;
        console.log(`${r.id}\t${iso(r.at)}\t${person}\t${r.action}\t${r.outcome ?? 'ok'}\t${r.rows} rows\t${r.params}${r.result_sha256 ? `\tsha256 ${r.result_sha256}` : ''}${r.sig ? '' : '\tunsigned'}`);
      }
      return 0;
    }
    case 'anchor': {
      const config = load();
      const t = config.settings.traffic!;
      const m = await openManifest(config);
      const mail = anchorMail(config);
      const a = await anchorHead({ dir: resolve(dirname(config.file), t.dir), area: config.settings.area.code, entries: m.entries, settings: t.anchors, mailTo: mail ? mail.to : [] });
      console.log(a.line);
      console.log(`kept in ${a.file}`);
      if (a.token) console.log(`time-stamped ${new Date(a.token.genTime).toISOString()} by ${t.anchors.tsa_url} (${a.token.file})`);
      if (a.tokenError) console.log(`NOT TIME-STAMPED ${a.tokenError}`);
      if (!mail) console.log('not mailed: the settings have no mail section');
      else {
        const sent = await sendAnchorMail(resolve(dirname(config.file), t.dir), mail);
        if (sent.sent.length) console.log(`mailed to ${mail.to.join(', ')}`);
        for (const f of sent.failed) console.log(`NOT SENT ${f} (kept in anchors/outbox; the service retries)`);
        if (sent.failed.length) return 1;
      }
      return a.tokenError ? 1 : 0;
    }
    default:
      throw new ArchiveUsageError(action ? `unknown action ${JSON.stringify(action)}` : 'needs an action');
  }
}
