// Retention and legal holds. A segment may go only when its newest record
// entered the system longer ago than the retention (never less than 90
// days: the settings refuse less) and no hold in force covers it. A hold
// (time range, sources, until a date at most two years out, reason, who) is
// a manifest entry, and so is every purge, written before any file goes:
// the chain shows what was removed, when, by whom and under which rule.
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { MAX_HOLD_DAYS, MIN_RETENTION_DAYS } from '../config/schema.ts';
import type { Entry, HoldEntry, Manifest, PurgeEntry, ReleaseEntry, SegmentEntry } from './manifest.ts';

/** What holds and purges touch: the manifest, and the segments' folder. */
export interface ArchiveFiles {
  manifest: Manifest;
  segmentDir: string;
}
import { liveSegments } from './query.ts';

const DAY = 86_400_000;

export class HoldError extends Error {}

export interface HoldRequest {
  from: number;
  to: number;
  /** Exporter addresses; empty: every source. */
  sources: string[];
  until: number;
  reason: string;
  by: string;
}

export function activeHolds(entries: readonly Entry[], now: number): HoldEntry[] {
  return holdStates(entries, now)
    .filter((h) => h.state === 'in force')
    .map((h) => h.hold);
}

export interface HoldState {
  hold: HoldEntry;
  state: 'in force' | 'expired' | 'released';
  release?: ReleaseEntry;
}

export function holdStates(entries: readonly Entry[], now: number): HoldState[] {
  const releases = new Map(entries.flatMap((e) => (e.type === 'release' ? [[e.hold, e] as const] : [])));
  return entries
    .filter((e): e is HoldEntry => e.type === 'hold')
    .map((hold) => {
      const release = releases.get(hold.id);
      return release ? { hold, state: 'released', release } : { hold, state: hold.until > now ? 'in force' : 'expired' };
    });
}

/** Lifts a hold in force; the release is a manifest entry with who and why. */
export async function releaseHold(archive: ArchiveFiles, r: { id: string; reason: string; by: string }, now = Date.now()): Promise<ReleaseEntry> {
  const problems: string[] = [];
  if (r.reason.trim().length < 3) problems.push('--reason must say why (the order that lifts it)');
  if (r.by.trim() === '') problems.push('--by must name who lifted the hold');
  if (problems.length > 0) throw new HoldError(problems.join('; '));
  return archive.manifest.append<ReleaseEntry>({ type: 'release', by: r.by, at: now, hold: r.id, reason: r.reason }, (entries) => {
    const state = holdStates(entries, now).find((h) => h.hold.id === r.id);
    if (!state) throw new HoldError(`there is no hold ${r.id} (klaiwatch archive holds lists them)`);
    if (state.state !== 'in force') throw new HoldError(`hold ${r.id} is ${state.state} already`);
  });
}

/** Whether a hold in force keeps this segment. */
export function heldBy(s: SegmentEntry, holds: readonly HoldEntry[]): HoldEntry | undefined {
  return holds.find((h) => s.first_recv < h.to && s.last_recv >= h.from && (h.sources.length === 0 || h.sources.some((src) => s.exporters.includes(src))));
}

export async function placeHold(archive: ArchiveFiles, h: HoldRequest, now = Date.now()): Promise<HoldEntry> {
  const problems: string[] = [];
  if (!(h.to > h.from)) problems.push('--to must be after --from');
  if (!(h.until > now)) problems.push('--until must be in the future');
  if (h.until > now + MAX_HOLD_DAYS * DAY) problems.push(`--until may be at most ${MAX_HOLD_DAYS} days (2 years) from now (Computer Crime Act, section 26)`);
  if (h.reason.trim().length < 3) problems.push('--reason must say why (the official order, case or letter number)');
  if (h.by.trim() === '') problems.push('--by must name who placed the hold');
  for (const s of h.sources) if (isIP(s) === 0) problems.push(`--source ${JSON.stringify(s)} is not an address`);
  if (problems.length > 0) throw new HoldError(problems.join('; '));
  const id = `hold-${now.toString(36)}`;
  return archive.manifest.append<HoldEntry>({ type: 'hold', by: h.by, at: now, id, from: h.from, to: h.to, sources: h.sources, until: h.until, reason: h.reason });
}

export interface PurgePlan {
  expired: SegmentEntry[];
  /** Past retention but kept by a hold. */
  held: { segment: SegmentEntry; hold: HoldEntry }[];
  cutoff: number;
}

export function planPurge(entries: readonly Entry[], retentionDays: number, now: number): PurgePlan {
  // The floor is the law's, whatever a caller passes.
  const days = Math.max(retentionDays, MIN_RETENTION_DAYS);
  const cutoff = now - days * DAY;
  const holds = activeHolds(entries, now);
  const plan: PurgePlan = { expired: [], held: [], cutoff };
  for (const s of liveSegments(entries)) {
    // Retention counts from when the data entered the system: the newest record's receive time.
    if (s.last_recv >= cutoff) continue;
    const hold = heldBy(s, holds);
    if (hold) plan.held.push({ segment: s, hold });
    else plan.expired.push(s);
  }
  return plan;
}

/** Writes the purge entry, then removes the files. Files of earlier purges that are still there (a crash between) go too. */
export async function purge(archive: ArchiveFiles, retentionDays: number, by: string, now = Date.now()): Promise<{ entry: PurgeEntry | null; plan: PurgePlan }> {
  await archive.manifest.refresh();
  const plan = planPurge(archive.manifest.entries, retentionDays, now);
  let entry: PurgeEntry | null = null;
  if (plan.expired.length > 0) {
    entry = await archive.manifest.append<PurgeEntry>({ type: 'purge', by, at: now, files: plan.expired.map((s) => s.file), retention_days: Math.max(retentionDays, MIN_RETENTION_DAYS) });
  }
  for (const e of archive.manifest.entries) {
    if (e.type !== 'purge') continue;
    for (const f of e.files) await unlink(join(archive.segmentDir, f)).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
  }
  return { entry, plan };
}
