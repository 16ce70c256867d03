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
import { GENESIS_PREV, entryHash, goneSegments, publicKeyFromRaw, signatureValid, type Entry, type GenesisEntry, type RecoveryEntry, type SegmentEntry } from './manifest.ts';
import { sha256File } from './archive.ts';

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
}

/** One line for a recovery entry: "wal/current.wal: 5120 bytes, 200 records lost at byte 1048 (entry 3, ...)". */
export function describeRecovery(e: RecoveryEntry): string {
  const what = e.records === null ? `${e.bytes} bytes of an unfinished entry cut` : `${e.bytes} bytes, ${e.records}${e.counted ? '' : ' or more'} records lost`;
  return `${e.file}: ${what} at byte ${e.offset} (entry ${e.seq}, ${new Date(e.at).toISOString()}, SHA-256 ${e.sha256}; ${e.kept ? `kept in ${e.kept}` : 'not kept'}; ${e.note})`;
}

/**
 * `trustedKey`: the public key the archive must be signed with (from the
 * configured signing key, or given by the auditor). Without it the genesis
 * entry's own key is used, which proves consistency but not origin.
 */
export async function verifyArchive(dir: string, trustedKey?: string): Promise<VerifyResult> {
  const faults: string[] = [];
  const manifestPath = join(dir, 'manifest.jsonl');
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    return { ok: false, faults: [`${manifestPath}: cannot read (${(err as NodeJS.ErrnoException).code}): the manifest is missing`], entries: 0, segments: 0, head: null, publicKey: null, recoveries: [] };
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
  const last = valid.at(-1);
  return { ok: faults.length === 0, faults, entries: valid.length, segments: segments.filter((x) => !purged.has(x.file) && !merged.has(x.file)).length, head: last ? { seq: last.seq, hash: last.hash } : null, publicKey, recoveries };
}
