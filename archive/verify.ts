// `klaiwatch archive verify`: recomputes every entry's hash and signature,
// walks the chain from the genesis, recomputes every segment file's SHA-256,
// and names each fault: an entry edited, removed or reordered, a segment
// altered, removed, swapped with another or added beside the manifest.
// Recovery entries (bytes cut when the archive opened: a torn manifest line,
// a write-ahead log's torn tail and the records it held) are no fault, but
// each is reported: the archive is "intact, with N recoveries", never
// plainly intact.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { GENESIS_PREV, entryHash, goneSegments, publicKeyFromRaw, signatureValid, type Entry, type GenesisEntry, type PurgeEntry, type RecoveryEntry, type SegmentEntry } from './manifest.ts';
import { sha256File } from './archive.ts';
import { journalEntries, readJournalRows, verifyRows } from './journal.ts';
import { checkHeads, checkTokens, keptAnchors, type SentHead } from './anchor.ts';

export interface VerifyOptions {
  /** Heads sent out (the daily mail: `verify --anchors FILE`). */
  anchors?: readonly SentHead[];
  /** The time-stamping authority's CA certificate: tokens in anchors/ are checked against it. */
  tsaCa?: string;
  /** The verifier's clock (UTC ms). */
  now?: number;
}

/** Entry times may step back this much (two appends racing for the lock, an NTP correction); more is a fault. */
export const BACKWARDS_SLACK_MS = 60_000;
/** An entry dated this far past the verifier's clock is a fault. */
export const FUTURE_SLACK_MS = 5 * 60_000;
const DAY = 86_400_000;
const utc = (t: number) => new Date(t).toISOString();

export interface VerifyResult {
  ok: boolean;
  faults: string[];
  entries: number;
  segments: number;
  /** The last entry: compare it with a copy kept elsewhere (the daily chain head). */
  head: { seq: number; hash: string } | null;
  publicKey: string | null;
  /** What recovery entries say was cut, one line each (bytes and records lost, where, where kept). */
  recoveries: string[];
  /** What was checked and held beyond the chain itself: the access journal, heads sent out, time-stamp tokens. */
  notes: string[];
}

/**
 * One line for a recovery entry: "wal/current.wal: 5120 bytes, at least 200
 * records lost at byte 1048 (entry 3, ...)". At least: the count is what the
 * cut frames' headers name; what followed a cut mid-frame is unknown (and a
 * cut exactly at a frame boundary leaves no trace at all).
 */
export function describeRecovery(e: RecoveryEntry): string {
  const what = e.records === null ? `${e.bytes} bytes of an unfinished entry cut` : `${e.bytes} bytes, at least ${e.records} records lost`;
  return `${e.file}: ${what} at byte ${e.offset} (entry ${e.seq}, ${new Date(e.at).toISOString()}, SHA-256 ${e.sha256}; ${e.kept ? `kept in ${e.kept}` : 'not kept'}; ${e.note})`;
}

/**
 * `trustedKey`: the public key the archive must be signed with (from the
 * configured signing key, or given by the auditor). Without it the genesis
 * entry's own key is used, which proves consistency but not origin.
 */
export async function verifyArchive(dir: string, trustedKey?: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const faults: string[] = [];
  const manifestPath = join(dir, 'manifest.jsonl');
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    return { ok: false, faults: [`${manifestPath}: cannot read (${(err as NodeJS.ErrnoException).code}): the manifest is missing`], entries: 0, segments: 0, head: null, publicKey: null, recoveries: [], notes: [] };
  }
  const end = text.lastIndexOf('\n') + 1;
  const lines = text.slice(0, end).split('\n').filter((l) => l.trim() !== '');
  // A last line without its newline: a crash mid-append (opening the archive keeps it aside and records it), or an append under way.
  if (end < text.length) faults.push(`manifest line ${lines.length + 1}: unfinished (${Buffer.byteLength(text.slice(end))} bytes without a newline): a crash during an append, or an append under way (run verify again); opening the archive keeps such bytes aside and records them`);
  const entries: (Entry | null)[] = lines.map((l, i) => {
    try {
      return JSON.parse(l) as Entry;
    } catch {
      faults.push(`manifest line ${i + 1}: not valid JSON (the manifest was edited)`);
      return null;
    }
  });
  const genesis = entries[0];
  let key: KeyObject | null = null;
  let publicKey: string | null = null;
  if (!genesis || genesis.type !== 'genesis') faults.push('manifest line 1: the genesis entry is missing (the beginning of the chain was removed)');
  else {
    publicKey = (genesis as GenesisEntry).public_key;
    if (trustedKey && trustedKey !== publicKey) faults.push(`manifest line 1: the archive is signed with key ${publicKey}, not the trusted key ${trustedKey} (the manifest was replaced)`);
    try {
      key = publicKeyFromRaw(trustedKey ?? publicKey);
    } catch {
      faults.push('manifest line 1: the public key is not an Ed25519 key');
    }
  }

  let prev = GENESIS_PREV;
  let expectSeq = 0;
  entries.forEach((e, i) => {
    if (!e) {
      prev = '';
      expectSeq++;
      return;
    }
    const where = `manifest line ${i + 1} (entry ${e.seq}, ${e.type}${e.type === 'segment' ? ` ${(e as SegmentEntry).file}` : ''})`;
    if (entryHash(e as unknown as Record<string, unknown>) !== e.hash) faults.push(`${where}: its content does not match its hash (the entry was altered)`);
    else if (key && !signatureValid(e, key)) faults.push(`${where}: the signature is not valid for the archive's key`);
    if (e.seq !== expectSeq) faults.push(`${where}: expected entry ${expectSeq} here (entries were removed or reordered)`);
    if (prev !== '' && e.prev !== prev) faults.push(`${where}: does not follow the previous entry's hash (an entry before it was removed, altered or reordered)`);
    prev = e.hash;
    expectSeq = e.seq + 1;
  });

  const valid = entries.filter((e): e is Entry => e !== null);
  const { purged, merged } = goneSegments(valid);
  const segments = valid.filter((e): e is SegmentEntry => e.type === 'segment');
  const byHash = new Map(segments.map((s) => [s.sha256, s]));
  const byFile = new Map(segments.map((s) => [s.file, s]));
  // A merged segment's entry must name earlier entries exactly, and hold their records.
  for (const s of segments) {
    if (!s.merged_from) continue;
    for (const m of s.merged_from) {
      const src = byFile.get(m.file);
      if (!src || src.seq >= s.seq || src.sha256 !== m.sha256 || src.rows !== m.rows) faults.push(`segment ${s.file} (entry ${s.seq}): says it was merged from ${m.file} (entry ${m.seq}), which the chain does not hold as such`);
    }
    const rows = s.merged_from.reduce((n, m) => n + m.rows, 0);
    if (rows !== s.rows) faults.push(`segment ${s.file} (entry ${s.seq}): holds ${s.rows} records, the segments it was merged from ${rows}`);
  }
  const segDir = join(dir, 'segments');
  const present = new Set((await readdir(segDir).catch(() => [] as string[])).filter((n) => n.endsWith('.parquet') && !n.startsWith('.tmp-')));
  for (const s of segments) {
    if (purged.has(s.file)) {
      if (present.has(s.file)) faults.push(`segment ${s.file} (entry ${s.seq}): purged in the manifest but still present`);
      present.delete(s.file);
      continue;
    }
    const into = merged.get(s.file);
    if (into) {
      if (present.has(s.file)) faults.push(`segment ${s.file} (entry ${s.seq}): merged into ${into.file} (entry ${into.seq}) but still present (an interrupted merge: opening the archive removes it)`);
      present.delete(s.file);
      continue;
    }
    if (!present.has(s.file)) {
      faults.push(`segment ${s.file} (entry ${s.seq}): removed (the file is missing)`);
      continue;
    }
    present.delete(s.file);
    const actual = await sha256File(join(segDir, s.file));
    if (actual === s.sha256) continue;
    const other = byHash.get(actual);
    if (other) faults.push(`segment ${s.file} (entry ${s.seq}): holds the content of ${other.file} (entry ${other.seq}): segments were swapped or reordered`);
    else faults.push(`segment ${s.file} (entry ${s.seq}): altered (SHA-256 ${actual}, the manifest says ${s.sha256})`);
  }
  for (const n of [...present].sort()) faults.push(`segment ${n}: added (a file the manifest does not list)`);
  const recoveries: string[] = [];
  for (const e of valid) {
    if (e.type !== 'recovery') continue;
    let line = describeRecovery(e);
    // The kept bytes: there, or gone (removed to free space), or not what was cut.
    if (e.kept) {
      const actual = await sha256File(join(dir, e.kept)).catch(() => null);
      if (actual === null) line += `; ${e.kept} is missing`;
      else if (actual !== e.sha256) faults.push(`manifest entry ${e.seq} (recovery): ${e.kept} does not hold the bytes cut (SHA-256 ${actual}, the entry says ${e.sha256})`);
    }
    recoveries.push(line);
  }
  faults.push(...timeFaults(valid, opts.now ?? Date.now()));
  const notes: string[] = [];
  // The access journal against the heads the chain recorded.
  const anchors = journalEntries(valid);
  let rows: ReturnType<typeof readJournalRows> = null;
  try {
    rows = readJournalRows(dir);
  } catch (err) {
    faults.push(`journal.sqlite: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (rows === null) {
    const last = anchors.filter((a) => a.last_id > 0).at(-1);
    if (last) faults.push(`journal.sqlite: missing, but manifest entry ${last.seq} (${last.reason}, ${utc(last.at)}) says it held ${last.rows} rows (the journal was deleted)`);
  } else if (rows) {
    const j = verifyRows(rows, key, anchors);
    faults.push(...j.faults);
    notes.push(`access journal: ${j.rows} rows${j.unsignedLegacy ? ` (${j.unsignedLegacy} from before rows were signed)` : ''}, ${anchors.length} heads in the chain checked`);
  }
  // Heads sent out (the mail) and kept (anchors/, with their tokens).
  if (opts.anchors) {
    const h = checkHeads(valid, opts.anchors);
    faults.push(...h.faults);
    notes.push(...h.notes);
  }
  const kept = await keptAnchors(dir);
  if (kept.length > 0) {
    const h = checkHeads(valid, kept);
    faults.push(...h.faults);
    const t = await checkTokens(valid, kept, opts.tsaCa);
    faults.push(...t.faults);
    notes.push(`${kept.length} heads kept in anchors/ (the newest: entry ${kept.at(-1)!.seq})`, ...t.notes);
  }
  const last = valid.at(-1);
  return { ok: faults.length === 0, faults, entries: valid.length, segments: segments.filter((x) => !purged.has(x.file) && !merged.has(x.file)).length, head: last ? { seq: last.seq, hash: last.hash } : null, publicKey, recoveries, notes };
}

/**
 * What the entries' own times say: no entry dated before the one before it
 * (past BACKWARDS_SLACK_MS) or after the verifier's clock, no segment whose
 * records were received after it was sealed, and each purge within
 * retention by its own date and by the chain's times (an entry after the
 * purge dated before it shows the clock was ahead when it was written).
 */
export function timeFaults(entries: readonly Entry[], now: number): string[] {
  const faults: string[] = [];
  const what = (e: Entry) => `entry ${e.seq} (${e.type}${e.type === 'segment' ? ` ${e.file}` : ''})`;
  let prev: Entry | null = null;
  for (const e of entries) {
    if (prev && e.at < prev.at - BACKWARDS_SLACK_MS) faults.push(`manifest ${what(e)}: dated ${utc(e.at)}, before ${what(prev)} dated ${utc(prev.at)}: entry times went backwards (the clock was moved)`);
    if (e.at > now + FUTURE_SLACK_MS) faults.push(`manifest ${what(e)}: dated ${utc(e.at)}, in the future of this machine's clock (${utc(now)})`);
    if (e.type === 'segment' && !e.merged_from && e.last_recv > e.at + BACKWARDS_SLACK_MS) faults.push(`manifest ${what(e)}: holds records received until ${utc(e.last_recv)}, after it was sealed (${utc(e.at)})`);
    if (!prev || e.at > prev.at) prev = e;
  }
  const bySeg = new Map(entries.flatMap((e) => (e.type === 'segment' ? [[e.file, e] as const] : [])));
  for (const p of entries.filter((e): e is PurgeEntry => e.type === 'purge')) {
    const days = p.retention_days;
    // The chain's own time at the purge: no later than any entry after it says (its date, or a segment's first receive time).
    const after = entries.filter((e) => e.seq > p.seq);
    const evidence = after.map((e) => ({ e, t: Math.min(e.at, e.type === 'segment' && !e.merged_from ? e.first_recv : Infinity) })).sort((a, b) => a.t - b.t)[0];
    for (const f of p.files) {
      const s = bySeg.get(f);
      if (!s) {
        faults.push(`manifest entry ${p.seq} (purge): removed ${f}, which the chain never sealed`);
        continue;
      }
      const age = (t: number) => ((t - s.last_recv) / DAY).toFixed(1);
      if (s.last_recv >= p.at - days * DAY) faults.push(`manifest entry ${p.seq} (purge, ${utc(p.at)}): removed ${f}, received until ${utc(s.last_recv)}: ${age(p.at)} days old, retention is ${days} days`);
      else if (evidence && evidence.t < p.at - BACKWARDS_SLACK_MS && s.last_recv >= evidence.t - days * DAY)
        faults.push(`manifest entry ${p.seq} (purge, dated ${utc(p.at)}): removed ${f}, received until ${utc(s.last_recv)}; by the chain's own times (${what(evidence.e)} after it is dated ${utc(evidence.t)}) it was at most ${age(evidence.t)} days old, retention is ${days} days`);
    }
  }
  return faults;
}
