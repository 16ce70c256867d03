// How a segment file lays out the archive's columns (record.ts COLUMNS).
//
// Layout 1 (the first segments): the columns as they are.
// Layout 2: the same facts, stored to compress and to
// be searched:
//   - an IPv4 address as its 32-bit number (src_v4, dst_v4, nat_v4); any
//     other address (IPv6) as text in src_ip, dst_ip, nat_ip, which are
//     empty for IPv4. Sorted by source address as a number, the reader skips
//     row groups by integer statistics, and a number is a quarter of the
//     bytes of its text;
//   - the device's time and a flow's last and first packet as differences,
//     each from the time before it: dev_off = recv_ms - dev_ms,
//     end_off = (dev_ms, else recv_ms) - end_ms, start_off = (end_ms, else
//     dev_ms, else recv_ms) - start_ms. They are small (a flow's device time
//     is its last packet, so its end_off is 0) where the absolute times are
//     not; on a day of flows the segment is 30 % smaller for these two.
// Layout 3: layout 2 with the flags column (record.ts FLAG_*) at the end.
// Segments of layouts 1 and 2 have no flags column: `logical` reads it as
// NULL from them.
// Layout 4 (since this version): layout 3 with sampling, nat_event,
// post_nat_dst_ip (number-or-text as the other addresses: post_nat_dst_v4
// and post_nat_dst_ip), post_nat_dst_port and raw_bytes at the end; older
// segments read them as NULL.
// A segment says its layout in its footer (key `klaiwatch_layout`) and its
// manifest entry (`layout`); `logical` reads either back as COLUMNS.
import { COLUMNS } from './record.ts';
import { sqlString } from './sql.ts';

export const LAYOUT = 4;
/** Columns layout 3 lacks (added to COLUMNS in layout 4). */
const SINCE_4 = ['sampling', 'nat_event', 'post_nat_dst_ip', 'post_nat_dst_port', 'raw_bytes'];
/** Columns a layout's segments lack (added to COLUMNS since): NULL when read. */
const LACKS: Record<number, readonly string[]> = { 1: ['flags', ...SINCE_4], 2: ['flags', ...SINCE_4], 3: SINCE_4 };
export const LAYOUT_KEY = 'klaiwatch_layout';

/** Address columns stored as number-or-text in layout 2. */
export const ADDRESS_COLUMNS = ['src_ip', 'dst_ip', 'nat_ip', 'post_nat_dst_ip'] as const;
const v4Of = (c: string) => c.replace(/_ip$/, '_v4');
/** Time columns stored as differences in layout 2, and their names there. */
const OFFSETS: Record<string, string> = { dev_ms: 'dev_off', start_ms: 'start_off', end_ms: 'end_off' };

/** The current layout's columns (2 to 4: 3 adds flags, 4 sampling to raw_bytes), in file order, with their DuckDB types: COLUMNS, each address as two, each device or flow time as its difference. */
export const PHYSICAL: readonly (readonly [string, string])[] = COLUMNS.flatMap(([c, t]): [string, string][] => {
  if ((ADDRESS_COLUMNS as readonly string[]).includes(c)) return [[v4Of(c), 'UINTEGER'], [c, 'VARCHAR']];
  if (OFFSETS[c]) return [[OFFSETS[c], 'BIGINT']];
  return [[c, t]];
});

/** An IPv4 number as dotted text, in SQL. */
export const v4Text = (x: string) => `CASE WHEN ${x} IS NOT NULL THEN concat(${x} >> 24, '.', (${x} >> 16) & 255, '.', (${x} >> 8) & 255, '.', ${x} & 255) END`;

/** The event-time chain of layout 2, in SQL over its columns. */
const DEV = `(recv_ms - dev_off)`;
const END = `(coalesce(${DEV}, recv_ms) - end_off)`;
const START = `(coalesce(${END}, ${DEV}, recv_ms) - start_off)`;

/** SELECT list (without SELECT) that reads a layout's columns back as COLUMNS. */
export function logical(layout: number): string {
  const lacks = LACKS[layout] ?? [];
  if (layout === 1) return COLUMNS.map(([c, t]) => (lacks.includes(c) ? `NULL::${t} AS "${c}"` : `"${c}"`)).join(', ');
  return COLUMNS.map(([c, t]) => {
    if (lacks.includes(c)) return `NULL::${t} AS "${c}"`;
    if (c === 'dev_ms') return `${DEV} AS dev_ms`;
    if (c === 'end_ms') return `${END} AS end_ms`;
    if (c === 'start_ms') return `${START} AS start_ms`;
    if ((ADDRESS_COLUMNS as readonly string[]).includes(c)) return `coalesce(${c}, ${v4Text(v4Of(c))}) AS ${c}`;
    return `"${c}"`;
  }).join(', ');
}

/**
 * SELECT list that turns rows with COLUMNS (a seal's staged rows, a layout-1
 * segment) into layout 2; `v4` gives, per address column, the SQL of its
 * IPv4 number and of its text for anything else, when the caller has them
 * (the default parses the text).
 */
export function physical(v4: Partial<Record<(typeof ADDRESS_COLUMNS)[number], { num: string; text: string }>> = {}): string {
  return PHYSICAL.map(([c, t]) => {
    if (c === 'dev_off') return `CAST(recv_ms - dev_ms AS BIGINT) AS dev_off`;
    if (c === 'end_off') return `CAST(coalesce(dev_ms, recv_ms) - end_ms AS BIGINT) AS end_off`;
    if (c === 'start_off') return `CAST(coalesce(end_ms, dev_ms, recv_ms) - start_ms AS BIGINT) AS start_off`;
    const addr = ADDRESS_COLUMNS.find((a) => v4Of(a) === c || a === c);
    if (addr) {
      const given = v4[addr];
      if (c === addr) return `${given ? given.text : `CASE WHEN ${parseV4(addr)} IS NULL THEN ${addr} END`} AS ${c}`;
      return `${given ? given.num : parseV4(addr)} AS ${c}`;
    }
    return `CAST("${c}" AS ${t}) AS "${c}"`;
  }).join(', ');
}

/** The IPv4 number of an address column's text, in SQL; NULL unless it is dotted-quad IPv4 written as inet_ntop writes it. */
function parseV4(c: string): string {
  const p = (i: number) => `TRY_CAST(split_part(${c}, '.', ${i}) AS UTINYINT)`;
  const n = `(${p(1)}::UINTEGER * 16777216 + ${p(2)}::UINTEGER * 65536 + ${p(3)}::UINTEGER * 256 + ${p(4)}::UINTEGER)`;
  // Back to text and compared: "010.1.1.1" or "1.2.3.4.5" stay text.
  return `(CASE WHEN ${c} IS NOT NULL AND ${v4Text(n)} = ${c} THEN ${n} END)`;
}

/** Layout 2's sort order: by source address (number, then text), then receive time. */
export const PHYSICAL_ORDER = 'src_v4, src_ip, recv_ms';

/**
 * The condition "address column `c` is `ip`" for a layout (WAL rows are
 * layout 1): on the number column for IPv4, which the Parquet reader can
 * check against row-group statistics.
 */
export function addressIs(layout: number, c: string, ip: string, negate = false): string {
  const n = layout >= 2 ? ipv4Number(ip) : null;
  if (n !== null) return negate ? `${v4Of(c)} IS DISTINCT FROM ${n}` : `${v4Of(c)} = ${n}`;
  return negate ? `${c} IS DISTINCT FROM ${sqlString(ip)}` : `${c} = ${sqlString(ip)}`;
}

/** Dotted-quad IPv4 (as inet_ntop writes it) as its number; null for anything else. */
export function ipv4Number(ip: string): number | null {
  const b = Buffer.from(ip, 'latin1');
  const n = ipv4At(b, 0, b.length);
  return n < 0 ? null : n;
}

/**
 * The IPv4 address written in b[at, at + len) as its number, if it is
 * dotted-quad as inet_ntop writes it; -1 for anything else. Read from the
 * bytes (a seal looks up every address this way, without making a string).
 */
export function ipv4At(b: Uint8Array, at: number, len: number): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = at; i < at + len; i++) {
    const c = b[i]!;
    if (c === 0x2e) {
      if (digits === 0 || dots === 3) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 0x30 && c <= 0x39) {
      // No leading zeros: "010" would not come back as written.
      if (digits > 0 && part === 0) return -1;
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return -1;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return n * 256 + part;
}

/** An IPv4 number as dotted text. */
export const v4String = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
