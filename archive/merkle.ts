// Per-row hashes and a Merkle tree per segment: what lets one row of an
// evidence package be checked against the archive's signed manifest with the
// public key alone, without the rest of the segment.
//
// The row hash (canonical encoding, version 1). A row is its columns
// (record.ts COLUMNS, as `klaiwatch archive query` returns them: the logical
// values, whatever the segment's layout). Its canonical bytes are, for each
// column whose value is not null, in ascending byte order of the column
// names:
//   integer column: <name> ":i:" <value in decimal, "-" before a negative> "\n"
//   text column:    <name> ":s:" <UTF-8 byte length in decimal> ":" <the UTF-8 bytes> "\n"
//   bytes column:   <name> ":b:" <byte length in decimal> ":" <the bytes> "\n"   (raw_bytes; base64 in rows.json)
// (every column, flags included; a null column is left out, so a column
// added to the archive later does not change the hashes of rows without it).
// row hash = SHA-256(0x00 || canonical bytes): the leaf hash of RFC 6962
// (RFC 9162 2.1.1). An inner node is SHA-256(0x01 || left || right).
//
// The tree (RFC 6962 MTH): over a segment's rows in the order the Parquet
// file stores them; for n > 1 rows, k is the largest power of two below n,
// and the root is node(MTH(rows[0:k]), MTH(rows[k:n])). A segment's root is
// written into its signed manifest entry (`merkle_root`) when it is sealed
// or merged. An inclusion proof is RFC 6962's audit path, leaf to root.
import { createHash, hash } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import { COLUMNS } from './record.ts';
import { logical } from './layout.ts';
import { sqlString } from './sql.ts';

export const ROW_HASH_VERSION = 1;

const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);
const NL = 0x0a;

/** The canonical bytes of a row (an object of column → value, as rows.json holds it). */
export function canonicalRow(row: Readonly<Record<string, unknown>>): Buffer {
  const parts: Buffer[] = [];
  for (const name of Object.keys(row).sort(byBytes)) {
    const v = row[name];
    if (v === null || v === undefined) continue;
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) throw new Error(`column ${name}: ${v} is not a whole number (the archive's number columns are integers)`);
      // Exact decimal: String() gives the shortest form, which past 2^53 is not the integer's digits.
      parts.push(Buffer.from(`${name}:i:${Number.isSafeInteger(v) ? String(v) : BigInt(v).toString()}\n`, 'utf8'));
    } else if (typeof v === 'string') {
      const b = Buffer.from(v, 'utf8');
      parts.push(Buffer.from(`${name}:s:${b.length}:`, 'utf8'), b, Buffer.from([NL]));
    } else if (v instanceof Uint8Array) {
      parts.push(Buffer.from(`${name}:b:${v.length}:`, 'utf8'), Buffer.from(v.buffer, v.byteOffset, v.length), Buffer.from([NL]));
    } else throw new Error(`column ${name}: a ${typeof v} (the archive's columns are whole numbers, text or bytes)`);
  }
  return Buffer.concat(parts);
}

const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/** The row hash: SHA-256(0x00 || canonical bytes). */
export function rowHash(row: Readonly<Record<string, unknown>>): Buffer {
  return createHash('sha256').update(LEAF).update(canonicalRow(row)).digest();
}

const scratch = Buffer.alloc(65, 1);

/** An inner node: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  scratch.set(left, 1);
  scratch.set(right, 33);
  return hash('sha256', scratch, 'buffer');
}

/**
 * The row hash of each row of `from` (SQL with COLUMNS), in SQL: DuckDB
 * computes it as it reads the file, in the file's order.
 */
export function rowHashSql(): string {
  // Text pieces joined as VARCHAR (concat skips a NULL piece: a null column
  // is left out), turned into bytes once; a bytes column joins as BLOB between them.
  const groups: string[] = [];
  let text: string[] = [];
  const flush = () => {
    if (text.length > 0) groups.push(`encode(concat(${text.join(', ')}))`);
    text = [];
  };
  for (const [c, t] of [...COLUMNS].sort((a, b) => byBytes(a[0], b[0]))) {
    const col = `"${c}"`;
    if (t === 'BLOB') {
      flush();
      groups.push(`coalesce(encode('${c}:b:' || octet_length(${col}) || ':') || ${col} || '\\x0A'::BLOB, ''::BLOB)`);
    } else text.push(t === 'VARCHAR' ? `'${c}:s:' || strlen(${col}) || ':' || ${col} || chr(10)` : `'${c}:i:' || CAST(${col} AS VARCHAR) || chr(10)`);
  }
  flush();
  return `sha256(unhex('00') || ${groups.join(' || ')})`;
}

/**
 * RFC 6962's root, one leaf at a time (memory: one hash per level): the
 * stack holds the roots of complete subtrees of decreasing size.
 */
export class MerkleBuilder {
  private readonly stack: Buffer[] = [];
  private readonly sizes: number[] = [];
  size = 0;

  add(leaf: Buffer): void {
    let h = leaf;
    let s = 1;
    while (this.sizes.length > 0 && this.sizes.at(-1) === s) {
      h = nodeHash(this.stack.pop()!, h);
      s += this.sizes.pop()!;
    }
    this.stack.push(h);
    this.sizes.push(s);
    this.size++;
  }

  /** The root (hex); SHA-256 of nothing for no rows (RFC 6962's empty tree). */
  root(): string {
    if (this.stack.length === 0) return createHash('sha256').digest('hex');
    let h = this.stack.at(-1)!;
    for (let i = this.stack.length - 2; i >= 0; i--) h = nodeHash(this.stack[i]!, h);
    return h.toString('hex');
  }
}

/** The root over leaf hashes given one after the other in a buffer (32 bytes each). */
export function merkleRoot(leaves: Buffer): string {
  const b = new MerkleBuilder();
  for (let o = 0; o < leaves.length; o += 32) b.add(leaves.subarray(o, o + 32));
  return b.root();
}

/**
 * The audit paths of the leaves at `indices` (RFC 6962 PATH), from the leaf
 * up: level by level, each node's sibling if it has one (a last node without
 * one goes up unchanged). Works on a copy of the leaves, or in them.
 */
export function inclusionProofs(leaves: Buffer, indices: readonly number[], overwrite = false): Map<number, string[]> {
  const n = leaves.length / 32;
  const paths = new Map<number, string[]>(indices.map((i) => [i, []]));
  for (const i of indices) if (!(Number.isInteger(i) && i >= 0 && i < n)) throw new Error(`leaf ${i} is not in a tree of ${n}`);
  // `overwrite`: the caller has no further use for `leaves`, and the levels are computed in it.
  const level = overwrite ? leaves : Buffer.from(leaves);
  let size = n;
  const at = new Map(indices.map((i) => [i, i]));
  while (size > 1) {
    for (const [leaf, pos] of at) {
      const sib = pos ^ 1;
      if (sib < size) paths.get(leaf)!.push(level.toString('hex', sib * 32, sib * 32 + 32));
      at.set(leaf, pos >> 1);
    }
    const next = Math.ceil(size / 2);
    // In place: node j of the next level is written where leaf 2j was read.
    for (let j = 0; j < next; j++) {
      const l = 2 * j;
      const h = l + 1 < size ? nodeHash(level.subarray(l * 32, l * 32 + 32), level.subarray(l * 32 + 32, l * 32 + 64)) : level.subarray(l * 32, l * 32 + 32);
      h.copy(level, j * 32);
    }
    size = next;
  }
  return paths;
}

/** Checks an audit path (RFC 9162 2.1.3.2): true when leaf `index` of a tree of `size` with this path has root `root`. */
export function verifyInclusion(leaf: Buffer, index: number, size: number, path: readonly string[], root: string): boolean {
  if (!(index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    const sib = Buffer.from(p, 'hex');
    if (sib.length !== 32 || sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(sib, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else r = nodeHash(r, sib);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.toString('hex') === root;
}

/**
 * The row hashes of a segment file, in the order it stores its rows: read
 * with `layout`'s columns (layout.ts logical), hashed by DuckDB, handed over
 * a chunk at a time. `each` gets each 32-byte hash (a view valid for the call).
 */
export async function segmentRowHashes(con: DuckDBConnection, path: string, layout: number, each: (leaf: Buffer) => void): Promise<number> {
  const sql = `SELECT ${rowHashSql()} FROM (SELECT ${logical(layout)} FROM read_parquet(${sqlString(path)}${layout === 1 ? ', union_by_name = true' : ''}))`;
  // The scan's order is the file's (insertion order is kept, and it is one file).
  await con.run('SET preserve_insertion_order = true');
  const result = await con.stream(sql);
  let n = 0;
  const leaf = Buffer.alloc(32);
  for (;;) {
    const chunk = await result.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    const hex = chunk.getColumnValues(0) as string[];
    // One conversion per chunk: the hex texts joined.
    const bytes = Buffer.from(hex.join(''), 'hex');
    for (let o = 0; o < bytes.length; o += 32) {
      bytes.copy(leaf, 0, o, o + 32);
      each(leaf);
      n++;
    }
  }
  return n;
}

/**
 * A segment file's Merkle root (hex) and its row count, computed in DuckDB
 * (a seal's cost: handing a million hashes over to JavaScript took longer
 * than hashing them): the row hashes into a table in the file's order, then
 * one table per level, each node from the pair at its place in the level
 * below (a last node without a pair goes up as it is: RFC 6962's tree).
 */
export async function segmentMerkleRoot(con: DuckDBConnection, path: string, layout: number): Promise<{ root: string; rows: number }> {
  await con.run('SET preserve_insertion_order = true');
  const t = `_merkle_${++trees}`;
  let level = 0;
  try {
    await con.run(`CREATE TEMP TABLE ${t}_0 AS SELECT unhex(${rowHashSql()}) AS h FROM (SELECT ${logical(layout)} FROM read_parquet(${sqlString(path)}${layout === 1 ? ', union_by_name = true' : ''}))`);
    const rows = Number((await con.runAndReadAll(`SELECT count(*) FROM ${t}_0`)).getColumns()[0]![0]);
    if (rows === 0) return { root: createHash('sha256').digest('hex'), rows };
    for (let n = rows; n > 1; n = Math.ceil(n / 2)) {
      await con.run(
        `CREATE TEMP TABLE ${t}_${level + 1} AS SELECT CASE WHEN r IS NULL THEN l ELSE unhex(sha256(unhex('01') || l || r)) END AS h FROM (SELECT h AS l FROM ${t}_${level} WHERE rowid % 2 = 0) POSITIONAL JOIN (SELECT h AS r FROM ${t}_${level} WHERE rowid % 2 = 1)`,
      );
      await con.run(`DROP TABLE ${t}_${level}`);
      level++;
    }
    const root = (await con.runAndReadAll(`SELECT hex(h) FROM ${t}_${level}`)).getColumns()[0]![0] as string;
    return { root: root.toLowerCase(), rows };
  } finally {
    await con.run(`DROP TABLE IF EXISTS ${t}_${level}`);
  }
}

let trees = 0;

/** Every row hash of a segment file in one buffer (32 bytes each, in file order): for an export's proofs. */
export async function segmentLeaves(con: DuckDBConnection, path: string, layout: number, rows: number): Promise<Buffer> {
  const out = Buffer.alloc(rows * 32);
  let o = 0;
  const n = await segmentRowHashes(con, path, layout, (leaf) => {
    if (o + 32 > out.length) throw new Error(`${path}: holds more rows than its manifest entry says (${rows})`);
    leaf.copy(out, o);
    o += 32;
  });
  if (n !== rows) throw new Error(`${path}: holds ${n} rows, its manifest entry says ${rows}`);
  return out;
}
