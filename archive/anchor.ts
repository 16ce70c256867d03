// Anchors outside the machine: every day the manifest's head (the last
// entry's sequence number and hash) is written to anchors/, e-mailed to the
// officer and the auditors (traffic.anchors.mail_to), and, when
// traffic.anchors.tsa_url is set, timestamped by an RFC 3161 time-stamping
// authority (the token kept beside it). A chain whose tail was cut, or
// rewritten from some entry on, no longer holds a head sent out before:
// `klaiwatch archive verify --anchors FILE` (the heads as the mail gave
// them, one per line) names it, and so does a token kept in anchors/.
//
// The archive part may not import collector/ (architecture rule), so mail
// goes through nodemailer here, from a small file outbox in
// anchors/outbox/ (one JSON file a message; retried with backoff as the
// collector's outbox does; sent ones move to anchors/sent/).
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, rename, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import type { Entry } from './manifest.ts';
import type { Config } from '../config/load.ts';
import { smtpTransportOptions, type SmtpSettings } from '../config/smtp.ts';

const run = promisify(execFile);

export interface ChainHead {
  seq: number;
  hash: string;
  /** When the entry was written (UTC ms), as the entry says. */
  at: number;
}

/** A head as sent out (a line of the mail, or a file in anchors/). */
export interface SentHead {
  seq: number;
  hash: string;
  /** When it was sent out (UTC ms), or null if the line does not say. */
  sentAt: number | null;
  /** Where it came from: "anchors.txt line 3", "anchors/head-...". */
  source: string;
}

/** One line: what the mail gives and `verify --anchors` reads back. */
export function headLine(area: string, head: ChainHead, sentAt: number): string {
  return `klaiwatch chain head: area=${area.replace(/\s+/g, '_')} seq=${head.seq} hash=${head.hash} entry_at=${new Date(head.at).toISOString()} sent_at=${new Date(sentAt).toISOString()}`;
}

const HEAD = /\bseq=(\d{1,12}) hash=([0-9a-f]{64})\b/;
const SENT = /\bsent_at=(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z)\b/;
/** At most this much of an anchors file is read, and this much of each line looked at. */
export const MAX_ANCHORS_BYTES = 16 * 1024 * 1024;
const MAX_LINE = 4096;

export class AnchorError extends Error {}

/**
 * The heads in a text (a saved mail, or lines copied from several): every
 * line holding `seq=N hash=H`; other lines are ignored, so a whole mail may
 * be given. Throws if there is none.
 */
export function parseHeads(text: string, name: string): SentHead[] {
  const out: SentHead[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const l = raw.slice(0, MAX_LINE);
    const m = HEAD.exec(l);
    if (!m) return;
    const s = SENT.exec(l);
    out.push({ seq: Number(m[1]), hash: m[2]!, sentAt: s ? Date.parse(s[1]!) : null, source: `${name} line ${i + 1}` });
  });
  if (out.length === 0) throw new AnchorError(`${name}: holds no chain head (a line with "seq=N hash=<64 hex digits>", as the daily mail gives it)`);
  return out;
}

/**
 * Quoted-printable (RFC 2045 6.7) undone: soft line breaks ("=" at a line's
 * end) joined, =XX made the byte XX; anything else as it is. A mail saved
 * as its raw source (.eml) carries the head line so: "seq=3D14 hash=3D…".
 */
export function decodeQuotedPrintable(b: Buffer): Buffer {
  const out = Buffer.alloc(b.length);
  let n = 0;
  const hex = (c: number | undefined) => (c === undefined ? -1 : c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 55 : c >= 0x61 && c <= 0x66 ? c - 87 : -1);
  for (let i = 0; i < b.length; i++) {
    if (b[i] !== 0x3d) {
      out[n++] = b[i]!;
      continue;
    }
    // A soft break: "=" then optional spaces or tabs, then CRLF or LF.
    let j = i + 1;
    while (j < b.length && (b[j] === 0x20 || b[j] === 0x09)) j++;
    if (b[j] === 0x0a || (b[j] === 0x0d && b[j + 1] === 0x0a)) {
      i = b[j] === 0x0d ? j + 1 : j;
      continue;
    }
    const hi = hex(b[i + 1]);
    const lo = hex(b[i + 2]);
    if (hi >= 0 && lo >= 0) {
      out[n++] = hi * 16 + lo;
      i += 2;
    } else out[n++] = 0x3d;
  }
  return out.subarray(0, n);
}

/**
 * The heads in a file's bytes: as they are, and, when the file holds a
 * quoted-printable mail ("=3D" or a soft break), decoded too (a plain
 * "seq=14" must not be decoded, so both are read); each head once.
 */
export function headsOfBytes(b: Buffer, name: string): SentHead[] {
  const plain = (() => {
    try {
      return parseHeads(b.toString('utf8'), name);
    } catch {
      return [];
    }
  })();
  const qp = /=3D|=\r?\n/i.test(b.toString('latin1')) ? (() => {
    try {
      return parseHeads(decodeQuotedPrintable(b).toString('utf8'), `${name} (quoted-printable decoded)`);
    } catch {
      return [];
    }
  })() : [];
  const seen = new Set(plain.map((h) => `${h.seq} ${h.hash}`));
  const out = [...plain, ...qp.filter((h) => !seen.has(`${h.seq} ${h.hash}`))];
  if (out.length === 0) throw new AnchorError(`${name}: holds no chain head (a line with "seq=N hash=<64 hex digits>", as the daily mail gives it; a saved mail's quoted-printable is decoded)`);
  return out;
}

export async function readHeadsFile(path: string): Promise<SentHead[]> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new AnchorError(`--anchors ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const { size } = await fh.stat();
    if (size > MAX_ANCHORS_BYTES) throw new AnchorError(`--anchors ${path}: ${size} bytes; at most ${MAX_ANCHORS_BYTES} are read (give the lines with the heads)`);
    return headsOfBytes(await fh.readFile(), path);
  } finally {
    await fh.close();
  }
}

/** What verify says of the heads sent out: a fault for each the chain no longer holds as sent. */
export function checkHeads(entries: readonly Entry[], heads: readonly SentHead[]): { faults: string[]; notes: string[] } {
  const faults: string[] = [];
  const notes: string[] = [];
  const bySeq = new Map(entries.map((e) => [e.seq, e]));
  const last = entries.at(-1);
  for (const h of heads) {
    const when = h.sentAt === null ? '' : ` sent out ${new Date(h.sentAt).toISOString()}`;
    const e = bySeq.get(h.seq);
    if (!e) {
      faults.push(`anchor ${h.source}: the head${when} says entry ${h.seq} (hash ${h.hash}) existed; the chain ends at entry ${last?.seq ?? '-'}: ${last ? `entries ${last.seq + 1}–${h.seq} were removed (the tail of the chain was cut)` : 'the manifest is empty'}`);
    } else if (e.hash !== h.hash) {
      faults.push(`anchor ${h.source}: the head${when} says entry ${h.seq} had hash ${h.hash}; the chain's entry ${h.seq} (${e.type}) has ${e.hash}: the chain was rewritten from there on`);
    } else notes.push(`entry ${h.seq} matches the head${when} (${h.source})`);
  }
  return { faults, notes };
}

// ---------------------------------------------------------------- RFC 3161

/** DER: one tag, length and content. */
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const SHA256_OID = Buffer.from('0609608648016503040201', 'hex');

/** A TimeStampReq for a SHA-256 digest, with a nonce, asking for the TSA's certificate. */
export function timeStampRequest(digest: Buffer, nonce: Buffer): Buffer {
  const alg = tlv(0x30, Buffer.concat([SHA256_OID, Buffer.from([0x05, 0x00])]));
  const imprint = tlv(0x30, Buffer.concat([alg, tlv(0x04, digest)]));
  const n = nonce[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), nonce]) : nonce;
  return tlv(0x30, Buffer.concat([tlv(0x02, Buffer.from([1])), imprint, tlv(0x02, n), Buffer.from([0x01, 0x01, 0xff])]));
}

interface Der {
  tag: number;
  start: number;
  end: number;
}

/** One DER element at `pos` of `buf` (its content's bounds), checked against `limit`. */
function der(buf: Buffer, pos: number, limit: number, what: string): Der {
  if (pos + 2 > limit) throw new AnchorError(`${what}: ends early (byte ${pos})`);
  const tag = buf[pos]!;
  let len = buf[pos + 1]!;
  let start = pos + 2;
  if (len & 0x80) {
    const k = len & 0x7f;
    if (k === 0 || k > 4 || start + k > limit) throw new AnchorError(`${what}: a bad length at byte ${pos}`);
    len = 0;
    for (let i = 0; i < k; i++) len = len * 256 + buf[start + i]!;
    start += k;
  }
  if (start + len > limit) throw new AnchorError(`${what}: an element at byte ${pos} runs past its end`);
  return { tag, start, end: start + len };
}

function children(buf: Buffer, d: Der, what: string, max = 64): Der[] {
  const out: Der[] = [];
  for (let p = d.start; p < d.end && out.length < max; ) {
    const c = der(buf, p, d.end, what);
    out.push(c);
    p = c.end;
  }
  return out;
}

export interface TimeStamp {
  /** The status the authority gave (0 granted, 1 granted with changes). */
  status: number;
  /** The digest the token stamps (hex) and when (UTC ms). */
  digest: string;
  genTime: number;
  nonce: string | null;
}

/** Reads a TimeStampResp (what the authority answers, and what anchors/ keeps): status, stamped digest, time. */
export function readTimeStampResponse(buf: Buffer, what = 'time-stamp response'): TimeStamp {
  const top = der(buf, 0, buf.length, what);
  if (top.tag !== 0x30) throw new AnchorError(`${what}: not a TimeStampResp`);
  const [statusInfo, token] = children(buf, top, what);
  if (!statusInfo) throw new AnchorError(`${what}: no status`);
  const st = children(buf, statusInfo, what)[0];
  if (!st || st.tag !== 0x02) throw new AnchorError(`${what}: no status`);
  const status = buf.readUIntBE(st.start, Math.min(6, st.end - st.start) || 1);
  if (status > 1 || !token) throw new AnchorError(`${what}: the authority refused (status ${status})`);
  // ContentInfo { signedData, [0] SignedData { version, digestAlgorithms, encapContentInfo { tstInfo, [0] OCTET STRING } } }
  const ci = children(buf, token, what);
  const sd = ci[1] && children(buf, ci[1], what)[0];
  const encap = sd && children(buf, sd, what)[2];
  const wrapped = encap && children(buf, encap, what)[1];
  const octets = wrapped && children(buf, wrapped, what)[0];
  if (!octets || octets.tag !== 0x04) throw new AnchorError(`${what}: the token holds no TSTInfo`);
  const tst = der(buf, octets.start, octets.end, what);
  const f = children(buf, tst, what);
  const imprint = f[2] && children(buf, f[2], what)[1];
  const gen = f[4];
  if (!imprint || imprint.tag !== 0x04 || !gen || gen.tag !== 0x18) throw new AnchorError(`${what}: the TSTInfo lacks its digest or time`);
  const g = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\.\d{1,9})?Z$/.exec(buf.subarray(gen.start, gen.end).toString('latin1'));
  if (!g) throw new AnchorError(`${what}: a time-stamp time not in GeneralizedTime UTC form`);
  const genTime = Date.UTC(+g[1]!, +g[2]! - 1, +g[3]!, +g[4]!, +g[5]!, +g[6]!, g[7] ? Math.floor(Number(g[7]) * 1000) : 0);
  const nonceEl = f.slice(5).find((x) => x.tag === 0x02);
  const nonce = nonceEl ? buf.subarray(nonceEl.start, nonceEl.end).toString('hex').replace(/^00/, '') : null;
  return { status, digest: buf.subarray(imprint.start, imprint.end).toString('hex'), genTime, nonce };
}

/** Asks the authority at `url` to stamp `digest` (SHA-256); returns its whole answer (kept as .tsr) and what it says. */
export async function requestTimeStamp(url: string, digest: Buffer, timeoutMs = 30_000): Promise<{ response: Buffer; stamp: TimeStamp }> {
  const nonce = randomBytes(8);
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/timestamp-query' }, body: new Uint8Array(timeStampRequest(digest, nonce)), signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new AnchorError(`time-stamping authority ${url}: ${(err as Error).message}`);
  }
  if (!res.ok) throw new AnchorError(`time-stamping authority ${url}: HTTP ${res.status}`);
  const body = Buffer.from(await res.arrayBuffer());
  if (body.length > 1024 * 1024) throw new AnchorError(`time-stamping authority ${url}: an answer of ${body.length} bytes`);
  const stamp = readTimeStampResponse(body, `time-stamping authority ${url}`);
  if (stamp.digest !== digest.toString('hex')) throw new AnchorError(`time-stamping authority ${url}: stamped another digest (${stamp.digest})`);
  if (stamp.nonce !== nonce.toString('hex').replace(/^00/, '')) throw new AnchorError(`time-stamping authority ${url}: the answer does not carry the request's nonce`);
  return { response: body, stamp };
}

/**
 * Checks a kept token's signature with openssl (`openssl ts -verify`)
 * against the authority's CA certificate; null when it holds, else why not.
 */
export async function verifyTokenSignature(tsr: string, digest: string, caFile: string): Promise<string | null> {
  try {
    await run('openssl', ['ts', '-verify', '-in', tsr, '-digest', digest, '-CAfile', caFile], { timeout: 30_000 });
    return null;
  } catch (err) {
    const e = err as { stderr?: string; code?: string | number; message: string };
    if (e.code === 'ENOENT') return 'openssl is not installed: the signature was not checked';
    const why = (e.stderr ?? e.message).split('\n').find((l) => /error|fail|verif/i.test(l)) ?? e.message;
    return `openssl ts -verify: ${why.trim().slice(0, 300)}`;
  }
}

// ---------------------------------------------------------------- the anchors folder

export interface KeptAnchor extends SentHead {
  /** The head line as written and sent. */
  line: string;
  /** The token file beside it (anchors/…tsr), or null. */
  token: string | null;
}

const ANCHOR_FILE = /^head-(\d{1,12})-(\d{8}T\d{6}Z)\.txt$/;

/** The heads kept in anchors/ (each with its token, when there is one). */
export async function keptAnchors(dir: string, max = 100_000): Promise<KeptAnchor[]> {
  const folder = join(dir, 'anchors');
  const names = (await readdir(folder).catch(() => [] as string[])).filter((n) => ANCHOR_FILE.test(n)).sort().slice(-max);
  const all = new Set(await readdir(folder).catch(() => [] as string[]));
  const out: KeptAnchor[] = [];
  for (const n of names) {
    const text = (await readFile(join(folder, n), 'utf8')).slice(0, MAX_LINE);
    const heads = (() => {
      try {
        return parseHeads(text, `anchors/${n}`);
      } catch {
        return [];
      }
    })();
    const h = heads[0];
    if (!h) continue;
    const tsr = n.replace(/\.txt$/, '.tsr');
    out.push({ ...h, line: text.split('\n')[0]!, token: all.has(tsr) ? join(folder, tsr) : null });
  }
  return out;
}

/** The digest a token stamps: SHA-256 of the head line (UTF-8, without its newline). */
export const lineDigest = (line: string) => createHash('sha256').update(line, 'utf8').digest();

/** Checks the tokens kept in anchors/: each stamps its head line, and (with the CA) is signed by the authority; the stamped time is not before the entry's own. */
export async function checkTokens(entries: readonly Entry[], kept: readonly KeptAnchor[], caFile: string | undefined): Promise<{ faults: string[]; notes: string[] }> {
  const faults: string[] = [];
  const notes: string[] = [];
  const bySeq = new Map(entries.map((e) => [e.seq, e]));
  for (const a of kept) {
    if (!a.token) continue;
    const name = a.token.slice(a.token.lastIndexOf('anchors/'));
    let stamp: TimeStamp;
    try {
      stamp = readTimeStampResponse(await readFile(a.token), name);
    } catch (err) {
      faults.push(`${name}: ${(err as Error).message}`);
      continue;
    }
    const digest = lineDigest(a.line).toString('hex');
    if (stamp.digest !== digest) {
      faults.push(`${name}: stamps ${stamp.digest}, not the head line beside it (${digest}): the head file was altered`);
      continue;
    }
    const e = bySeq.get(a.seq);
    if (e && e.at > stamp.genTime + 60_000) faults.push(`${name}: entry ${a.seq} says it was written ${new Date(e.at).toISOString()}, after the authority stamped its hash (${new Date(stamp.genTime).toISOString()}): the clock was wrong`);
    let signature = 'signature not checked (traffic.anchors.tsa_ca not set)';
    if (caFile) {
      const why = await verifyTokenSignature(a.token, digest, caFile);
      if (why) {
        faults.push(`${name}: the token's signature does not verify against ${caFile} (${why})`);
        continue;
      }
      signature = 'signature verified';
    }
    notes.push(`entry ${a.seq} time-stamped ${new Date(stamp.genTime).toISOString()} (${name}, ${signature})`);
  }
  return { faults, notes };
}

// ---------------------------------------------------------------- sending

export interface AnchorSettings {
  mail_to: string[];
  tsa_url?: string | undefined;
  tsa_ca?: string | undefined;
  daily_at: string;
}

export interface AnchorMail {
  smtp: SmtpSettings;
  password?: string | undefined;
  from: string;
  to: string[];
  min_backoff: number;
  max_backoff: number;
}

interface OutboxMessage {
  to: string[];
  subject: string;
  text: string;
  message_id: string;
  created_at: number;
  attempts: number;
  next_at: number;
  last_error: string | null;
}

const stampOf = (t: number) => new Date(t).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');

export interface AnchorResult {
  head: ChainHead;
  line: string;
  file: string;
  token: { file: string; genTime: number } | null;
  tokenError: string | null;
  queued: string | null;
}

/**
 * Anchors the chain's head now: anchors/head-<seq>-<time>.txt, its token
 * when an authority is set (a failure is said, not thrown: the head is kept
 * and mailed all the same), and a mail queued to the officer and the
 * auditors. The mail is sent by `sendAnchorMail`.
 */
export async function anchorHead(o: { dir: string; area: string; entries: readonly Entry[]; settings: AnchorSettings; mailTo: string[]; now?: number }): Promise<AnchorResult> {
  const last = o.entries.at(-1);
  if (!last) throw new AnchorError('the manifest is empty: there is no chain head to send');
  const now = o.now ?? Date.now();
  const head = { seq: last.seq, hash: last.hash, at: last.at };
  const line = headLine(o.area, head, now);
  const folder = join(o.dir, 'anchors');
  await mkdir(join(folder, 'outbox'), { recursive: true, mode: 0o750 });
  const base = `head-${head.seq}-${stampOf(now)}`;
  await writeFile(join(folder, `${base}.txt`), line + '\n', { mode: 0o640 });
  let token: AnchorResult['token'] = null;
  let tokenError: string | null = null;
  if (o.settings.tsa_url) {
    try {
      const { response, stamp } = await requestTimeStamp(o.settings.tsa_url, lineDigest(line));
      await writeFile(join(folder, `${base}.tsr`), response, { mode: 0o640 });
      token = { file: join(folder, `${base}.tsr`), genTime: stamp.genTime };
    } catch (err) {
      tokenError = (err as Error).message;
    }
  }
  let queued: string | null = null;
  if (o.mailTo.length > 0) {
    const msg: OutboxMessage = {
      to: o.mailTo,
      subject: `klaiwatch: chain head of the traffic-log archive, ${o.area}, entry ${head.seq}`,
      text: [
        `The traffic-log archive of ${o.area} (host ${hostname()}) ended at this entry on ${new Date(now).toISOString()}:`,
        '',
        line,
        '',
        'Keep this mail. Whoever checks the archive later saves the lines above (from any number of these mails) in a file and runs',
        '  klaiwatch archive verify --anchors FILE',
        'which names any head the archive no longer holds as sent: entries removed from its end, or the chain rewritten.',
        token ? `The head was also time-stamped by ${o.settings.tsa_url} at ${new Date(token.genTime).toISOString()} (kept in the archive's anchors folder).` : '',
      ].join('\n'),
      message_id: `<klaiwatch-head-${head.seq}-${stampOf(now)}-${randomBytes(4).toString('hex')}@${hostname()}>`,
      created_at: now,
      attempts: 0,
      next_at: now,
      last_error: null,
    };
    queued = join(folder, 'outbox', `${base}.json`);
    await writeFile(queued, JSON.stringify(msg) + '\n', { mode: 0o640 });
  }
  return { head, line, file: join(folder, `${base}.txt`), token, tokenError, queued };
}

/** The newest head kept in anchors/ (when it was sent), or null. */
export async function lastAnchorAt(dir: string): Promise<number | null> {
  const names = (await readdir(join(dir, 'anchors')).catch(() => [] as string[])).filter((n) => ANCHOR_FILE.test(n));
  let latest: number | null = null;
  for (const n of names) {
    const s = ANCHOR_FILE.exec(n)![2]!;
    const t = Date.parse(`${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`);
    if (latest === null || t > latest) latest = t;
  }
  return latest;
}

/**
 * Sends what waits in anchors/outbox/ and is due (at most `max` messages):
 * accepted by the SMTP server, it moves to anchors/sent/; refused or
 * unreachable, it waits (min_backoff, doubling up to max_backoff).
 */
export async function sendAnchorMail(dir: string, mail: AnchorMail, now = Date.now(), max = 50): Promise<{ sent: string[]; failed: string[] }> {
  const outbox = join(dir, 'anchors', 'outbox');
  const names = (await readdir(outbox).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort().slice(0, max);
  const result = { sent: [] as string[], failed: [] as string[] };
  if (names.length === 0) return result;
  const { default: nodemailer } = await import('nodemailer');
  const transport = nodemailer.createTransport(smtpTransportOptions(mail.smtp, mail.password));
  try {
    await mkdir(join(dir, 'anchors', 'sent'), { recursive: true, mode: 0o750 });
    for (const n of names) {
      const path = join(outbox, n);
      let msg: OutboxMessage;
      try {
        msg = JSON.parse(await readFile(path, 'utf8')) as OutboxMessage;
      } catch {
        await rename(path, join(dir, 'anchors', 'sent', `${n}.unreadable`)).catch(() => undefined);
        result.failed.push(`${n}: not a message (moved aside)`);
        continue;
      }
      if (msg.next_at > now) continue;
      try {
        await transport.sendMail({ from: mail.from, to: msg.to, subject: msg.subject, text: msg.text, messageId: msg.message_id });
        await rename(path, join(dir, 'anchors', 'sent', n));
        result.sent.push(n);
      } catch (err) {
        msg.attempts++;
        msg.last_error = (err as Error).message.slice(0, 500);
        msg.next_at = now + Math.min(mail.max_backoff, mail.min_backoff * 2 ** Math.min(msg.attempts - 1, 20));
        await writeFile(path, JSON.stringify(msg) + '\n', { mode: 0o640 });
        result.failed.push(`${n}: ${msg.last_error} (attempt ${msg.attempts}; again after ${new Date(msg.next_at).toISOString()})`);
      }
    }
  } finally {
    transport.close();
  }
  return result;
}

/** Whether a daily anchor is due: none yet today (Asia/Bangkok) past `daily_at`, or none for 24 h. */
export function anchorDue(last: number | null, dailyAt: string, now: number): boolean {
  if (last === null) return true;
  if (now - last >= 86_400_000) return true;
  const BKK = 7 * 3_600_000;
  const [hh, mm] = dailyAt.split(':').map(Number) as [number, number];
  const dayStart = Math.floor((now + BKK) / 86_400_000) * 86_400_000 - BKK;
  const todayAt = dayStart + (hh * 60 + mm) * 60_000;
  return now >= todayAt && last < todayAt;
}

/** The mail settings for the daily head (mail.* and traffic.anchors.mail_to), or null when there is no mail section. */
export function anchorMail(config: Config): AnchorMail | null {
  const m = config.settings.mail;
  if (!m) return null;
  const extra = config.settings.traffic?.anchors.mail_to ?? [];
  return {
    smtp: m.smtp,
    password: config.mailAuth.password?.reveal(),
    from: m.from,
    to: [...new Set([...m.officer, ...extra])],
    min_backoff: m.min_backoff,
    max_backoff: m.max_backoff,
  };
}

/**
 * The service's daily anchor: every ten minutes it looks whether one is due
 * (anchorDue: none since `daily_at` today, or none for a day), sends it, and
 * sends what waits in the outbox. Returns a stop function.
 */
export function startDailyAnchors(o: { dir: string; config: Config; entries: () => Promise<readonly Entry[]>; log: { info(o: object, m: string): void; error(o: object, m: string): void }; everyMs?: number }): () => void {
  const t = o.config.settings.traffic!;
  const mail = anchorMail(o.config);
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      if (anchorDue(await lastAnchorAt(o.dir), t.anchors.daily_at, Date.now())) {
        const a = await anchorHead({ dir: o.dir, area: o.config.settings.area.code, entries: await o.entries(), settings: t.anchors, mailTo: mail ? mail.to : [] });
        o.log.info({ seq: a.head.seq, hash: a.head.hash, token: a.token?.file ?? null }, 'chain head anchored');
        if (a.tokenError) o.log.error({ error: a.tokenError }, 'chain head not time-stamped');
      }
      if (mail) {
        const r = await sendAnchorMail(o.dir, mail);
        for (const f of r.failed) o.log.error({ error: f }, 'chain head mail not sent (kept in anchors/outbox)');
      }
    } catch (err) {
      o.log.error({ err }, 'anchoring the chain head failed');
    } finally {
      busy = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), o.everyMs ?? 10 * 60_000);
  timer.unref();
  return () => clearInterval(timer);
}
