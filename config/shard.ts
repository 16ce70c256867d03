// Collector shards (settings `collector.shard`): several collectors share an
// area, each owning some schools. A collector polls, judges, writes and
// alerts its own schools' devices. The devices its schools hang from that
// another shard owns (the office uplink, a district router: every ancestor
// along the `parent` chains) it only probes, for dependency: their state
// tells it that a school behind a dead uplink is unreachable, not down, so
// no storm of notices; they are never written to InfluxDB and never alerted
// here. Devices that are neither are not touched.
//
// Ownership of a school (the office too, by its own code and district):
// - "N/M": FNV-1a (32 bit, over the code's UTF-8 bytes) of the school code,
//   modulo M, equals N - 1. The same code always lands in the same shard, on
//   every machine; adding a school moves no other.
// - a list: the school's code or its district is in the list.
import type { Config, Device, School } from './load.ts';
import type { ShardInput } from './schema.ts';

/** FNV-1a, 32 bit, over the UTF-8 bytes of the text. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The shard (1..of) that owns a school code under "N/of". */
export function shardOf(code: string, of: number): number {
  return (fnv1a32(code) % of) + 1;
}

export function ownsSchool(shard: ShardInput | undefined, school: Pick<School, 'code' | 'district'>): boolean {
  if (!shard) return true;
  if (shard.kind === 'hash') return shardOf(school.code, shard.of) === shard.index;
  return shard.names.includes(school.code) || shard.names.includes(school.district);
}

export interface ShardPlan {
  /** "all", "1/2", or the list as written. */
  label: string;
  /** Devices this collector polls, judges, writes and alerts. */
  owned: ReadonlySet<string>;
  /** Devices of other shards its own devices hang from: probed for their state only. */
  dependencies: ReadonlySet<string>;
  /** School codes it owns (the office's code when it owns the office). */
  schools: ReadonlySet<string>;
}

export function planShard(config: Pick<Config, 'schools' | 'deviceById'> & { settings: { collector: { shard?: ShardInput | undefined } } }): ShardPlan {
  const shard = config.settings.collector.shard;
  const schools = new Set<string>();
  const owned = new Set<string>();
  for (const s of config.schools) {
    if (!ownsSchool(shard, s)) continue;
    schools.add(s.code);
    for (const d of s.devices) owned.add(d.id);
  }
  const dependencies = new Set<string>();
  // The loader refuses parent chains that loop; the bound is a second guard.
  const limit = config.deviceById.size;
  for (const id of owned) {
    let steps = 0;
    for (let p = config.deviceById.get(id)?.parent; p !== undefined && steps < limit; p = config.deviceById.get(p)?.parent, steps++) {
      if (owned.has(p) || dependencies.has(p)) break; // the rest of the chain is already in
      dependencies.add(p);
    }
  }
  // An ancestor reached through a dependency that is itself owned stays owned only.
  for (const id of owned) dependencies.delete(id);
  const label = !shard ? 'all' : shard.kind === 'hash' ? `${shard.index}/${shard.of}` : shard.names.join(', ');
  return { label, owned, dependencies, schools };
}

/** List entries that name no school code and no district: a typo would silently own nothing. */
export function unknownShardEntries(shard: ShardInput | undefined, schools: readonly Pick<School, 'code' | 'district'>[]): { index: number; name: string }[] {
  if (!shard || shard.kind !== 'list') return [];
  const known = new Set<string>();
  for (const s of schools) {
    known.add(s.code);
    known.add(s.district);
  }
  const out: { index: number; name: string }[] = [];
  shard.names.forEach((name, index) => {
    if (!known.has(name)) out.push({ index, name });
  });
  return out;
}

const listed = (ids: readonly string[], max = 10) => (ids.length === 0 ? 'none' : ids.length <= max ? ids.join(', ') : `${ids.slice(0, max).join(', ')} and ${ids.length - max} more`);

/** The check-config line: what this collector owns and what it probes only for dependency. */
export function describeShard(config: Pick<Config, 'schools' | 'devices' | 'deviceById'> & { settings: { instance: string; collector: { shard?: ShardInput | undefined } } }, plan: ShardPlan = planShard(config)): string {
  const schools = config.schools.filter((s) => !s.office);
  const ownSchools = schools.filter((s) => plan.schools.has(s.code)).map((s) => s.code);
  const office = config.schools.find((s) => s.office);
  const officeText = office ? `; the office (${office.code}) ${plan.schools.has(office.code) ? 'is owned here' : 'is another shard\'s'}` : '';
  const deps = config.devices.filter((d: Device) => plan.dependencies.has(d.id)).map((d) => d.id);
  return (
    `shard ${plan.label} (instance ${config.settings.instance}): owns ${ownSchools.length} of ${schools.length} schools (${listed(ownSchools)})${officeText}, ` +
    `${plan.owned.size} of ${config.devices.length} devices polled, written and alerted here; probes ${deps.length} for dependency only (${listed(deps)})`
  );
}
