// Write-ahead log frames into a DuckDB table, a column at a time: what a
// seal and a query over the open log start with.
//
// Values go into typed arrays of one DuckDB vector's length (2,048 rows) and
// are copied into a data chunk a whole column at once, then the chunk is
// appended. Text is what costs in JavaScript, so most text columns are
// staged as codes: each distinct value once in a dictionary, the rows
// holding its number, and `select` turns the codes back into text in SQL
// (an IPv4 address is looked up by its number, without making a string).
// Only the long, mostly distinct ones (the raw message and the URL) go in as
// strings, one call each. The table has only the columns some frame had
// (a flow has 15 of the 25), since DuckDB's appending costs by the column.
// Called once per value, DuckDB's appender took about 5.5 µs a flow; this
// takes about one.
import duckdb from '@duckdb/node-bindings';
import { DuckDBDataChunk, DuckDBBlobType, DuckDBBigIntType, DuckDBIntegerType, DuckDBSmallIntType, DuckDBVarCharType, type DuckDBConnection, type DuckDBAppender, type DuckDBType } from '@duckdb/node-api';
import { COLUMNS, decodeFrame, frameLayout, type TrafficRecord } from './record.ts';
import { ADDRESS_COLUMNS, ipv4At, physical, v4String } from './layout.ts';

/** How a column is staged. */
type Kind = 0 | 1 | 2 | 3 | 4 | 5 | 6;
const Kind = { Int64: 0, Int32: 1, Int16: 2, Code: 3, Text: 4, Addr: 5, Blob: 6 } as const;

/** Text columns staged as themselves; every other text column is staged as a dictionary code. */
const VERBATIM = new Set<string>(['url', 'raw']);
/** Address columns (layout.ts): coded too, an IPv4 address looked up by its number. */
const ADDRESS = new Set<string>(ADDRESS_COLUMNS);

const KINDS: Kind[] = COLUMNS.map(([c, t]) =>
  t === 'BIGINT' ? Kind.Int64 : t === 'INTEGER' ? Kind.Int32 : t === 'SMALLINT' ? Kind.Int16 : t === 'BLOB' ? Kind.Blob : VERBATIM.has(c) ? Kind.Text : ADDRESS.has(c) ? Kind.Addr : Kind.Code,
);
const WIDTH: Record<Kind, number> = { [Kind.Int64]: 8, [Kind.Int32]: 4, [Kind.Int16]: 2, [Kind.Code]: 4, [Kind.Text]: 0, [Kind.Addr]: 4, [Kind.Blob]: 0 };
const DUCK_TYPE: Record<Kind, DuckDBType> = {
  [Kind.Int64]: DuckDBBigIntType.instance,
  [Kind.Int32]: DuckDBIntegerType.instance,
  [Kind.Int16]: DuckDBSmallIntType.instance,
  [Kind.Code]: DuckDBIntegerType.instance,
  [Kind.Text]: DuckDBVarCharType.instance,
  [Kind.Addr]: DuckDBIntegerType.instance,
  [Kind.Blob]: DuckDBBlobType.instance,
};
const SQL_TYPE: Record<Kind, string> = { [Kind.Int64]: 'BIGINT', [Kind.Int32]: 'INTEGER', [Kind.Int16]: 'SMALLINT', [Kind.Code]: 'INTEGER', [Kind.Text]: 'VARCHAR', [Kind.Addr]: 'INTEGER', [Kind.Blob]: 'BLOB' };
const TWO32 = 4294967296;
/** Values up to this many bytes are remembered for the next row (a run of one value needs no look-up). */
const LAST = 64;
const EXPORTER = COLUMNS.findIndex(([c]) => c === 'exporter');

interface Column {
  kind: Kind;
  data: ArrayBuffer;
  i32: Int32Array;
  i16: Int16Array;
  /** One bit per row, set when the value is there (DuckDB's layout: 64-bit words, little-endian). */
  valid: Uint8Array<ArrayBuffer>;
  /** Code and address columns: text (as the latin1 reading of its UTF-8 bytes) → code, from 1. */
  codes: Map<string, number>;
  /** Address columns: an IPv4 address (as a 32-bit integer) → its code. */
  v4: Map<number, number>;
  /** The previous row's value (its bytes) and code. */
  last: Uint8Array;
  lastLen: number;
  lastCode: number;
  vector: duckdb.Vector | null;
}

export class Stager {
  readonly table: string;
  /** Rows staged so far. */
  rows = 0;
  /** Smallest and largest receive time staged (UTC ms). */
  firstRecv = Infinity;
  lastRecv = -Infinity;
  private readonly con: DuckDBConnection;
  private readonly cols: Column[];
  private readonly size = duckdb.vector_size();
  /** The columns the table has (a bit per column of COLUMNS), and their order in it. */
  private present = 0;
  private order: number[] = [];
  private app: DuckDBAppender | null = null;
  private chunk: DuckDBDataChunk | null = null;
  /** Rows in the chunk being filled. */
  private n = 0;
  private closed = false;

  private constructor(con: DuckDBConnection, table: string) {
    this.con = con;
    this.table = table;
    this.cols = KINDS.map((kind) => {
      const data = new ArrayBuffer(this.size * Math.max(WIDTH[kind], 1));
      return { kind, data, i32: new Int32Array(data), i16: new Int16Array(data), valid: new Uint8Array(this.size / 8).fill(0xff), codes: new Map(), v4: new Map(), last: new Uint8Array(LAST), lastLen: -1, lastCode: 0, vector: null };
    });
  }

  /** An empty staging table `table` on `con` (its columns come with the first frames). */
  static async create(con: DuckDBConnection, table: string): Promise<Stager> {
    await con.run(`CREATE TABLE "${table}" (_ BOOLEAN)`);
    return new Stager(con, table);
  }

  /** Stages one write-ahead log frame (any layout the log may hold); returns its row count. */
  async addFrame(payload: Buffer): Promise<number> {
    const layout = frameLayout(payload);
    if (!layout) {
      // JSON rows (the first versions' frames): as objects, through the slow path.
      const records = decodeFrame(payload);
      await this.addRecords(records);
      return records.length;
    }
    if (layout.columns & ~this.present) await this.widen(layout.columns);
    const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
    const cols = this.cols;
    let o = layout.rowsAt;
    for (let k = 0; k < layout.count; k++) {
      const map = view.getUint32(o, true);
      o += 4;
      const row = this.n;
      const byte = row >> 3;
      const bit = 1 << (row & 7);
      for (let i = 0; i < cols.length; i++) {
        const col = cols[i]!;
        if (!(map & (1 << i))) {
          col.valid[byte]! &= ~bit;
          continue;
        }
        switch (col.kind) {
          case Kind.Int64: {
            // Whole milliseconds and counts (a fraction is rounded, as a cast would).
            const v = Math.round(view.getFloat64(o, true));
            o += 8;
            if (i === 0) this.received(v);
            const hi = Math.floor(v / TWO32);
            col.i32[row * 2] = v - hi * TWO32;
            col.i32[row * 2 + 1] = hi;
            break;
          }
          case Kind.Int32:
            col.i32[row] = view.getInt32(o, true);
            o += 4;
            break;
          case Kind.Int16:
            col.i16[row] = view.getInt16(o, true);
            o += 2;
            break;
          case Kind.Text: {
            const len = view.getUint32(o, true);
            duckdb.vector_assign_string_element(col.vector!, row, payload.toString('utf8', o + 4, o + 4 + len));
            o += 4 + len;
            break;
          }
          case Kind.Blob: {
            // The bytes as they are (raw_bytes: a message that was not UTF-8).
            const len = view.getUint32(o, true);
            duckdb.vector_assign_string_element_len(col.vector!, row, payload.subarray(o + 4, o + 4 + len));
            o += 4 + len;
            break;
          }
          default: {
            const len = view.getUint32(o, true);
            col.i32[row] = this.codeAt(col, payload, o + 4, len);
            o += 4 + len;
          }
        }
      }
      this.rowDone();
    }
    return layout.count;
  }

  /** Stages records given as objects (frames of JSON rows, and tests). */
  async addRecords(records: readonly TrafficRecord[]): Promise<void> {
    let columns = 0;
    for (const r of records) {
      COLUMNS.forEach(([c], i) => {
        if (r[c] !== null && r[c] !== undefined) columns |= 1 << i;
      });
    }
    if (columns & ~this.present) await this.widen(columns);
    for (const r of records) {
      const row = this.n;
      for (let i = 0; i < COLUMNS.length; i++) {
        const col = this.cols[i]!;
        const v = r[COLUMNS[i]![0]];
        if (v === null || v === undefined) {
          col.valid[row >> 3]! &= ~(1 << (row & 7));
          continue;
        }
        if (col.kind === Kind.Int64) {
          const x = Math.round(Number(v));
          if (i === 0) this.received(x);
          const hi = Math.floor(x / TWO32);
          col.i32[row * 2] = x - hi * TWO32;
          col.i32[row * 2 + 1] = hi;
        } else if (col.kind === Kind.Int32) col.i32[row] = Number(v);
        else if (col.kind === Kind.Int16) col.i16[row] = Number(v);
        else if (col.kind === Kind.Text) duckdb.vector_assign_string_element(col.vector!, row, String(v));
        else if (col.kind === Kind.Blob) duckdb.vector_assign_string_element_len(col.vector!, row, v as Uint8Array);
        else {
          const b = Buffer.from(String(v), 'utf8');
          col.i32[row] = this.codeAt(col, b, 0, b.length);
        }
      }
      this.rowDone();
    }
  }

  /**
   * Appends what is left, closes the appender and writes the dictionaries
   * (table `<table>_dict`: per column and code the text, an IPv4 address's
   * number, and the code's place in address order); after this `select`
   * and `segmentSelect` read the staged rows.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.n > 0) this.appendChunk();
    this.app?.closeSync();
    const dict = `${this.table}_dict`;
    await this.con.run(`CREATE TABLE "${dict}" (col SMALLINT, code INTEGER, v VARCHAR, n UINTEGER, rank INTEGER)`);
    const app = await this.con.createAppender(dict);
    this.cols.forEach((col, i) => {
      const entries = dictionary(col);
      // Address order: IPv4 by number, then the rest by their bytes (as DuckDB orders text).
      if (col.kind === Kind.Addr) entries.sort((a, b) => (a.n !== null && b.n !== null ? a.n - b.n : a.n !== null ? -1 : b.n !== null ? 1 : Buffer.compare(Buffer.from(a.v), Buffer.from(b.v))));
      entries.forEach((e, rank) => {
        app.appendSmallInt(i);
        app.appendInteger(e.code);
        app.appendVarchar(e.v);
        if (e.n === null) app.appendNull();
        else app.appendUInteger(e.n);
        app.appendInteger(rank + 1);
        app.endRow();
      });
    });
    app.closeSync();
  }

  /** The exporters staged (the exporter column's dictionary). */
  exporters(): string[] {
    return this.texts('exporter').sort();
  }

  /** The distinct values staged in a code or address column. */
  texts(column: string): string[] {
    return dictionary(this.cols[COLUMNS.findIndex(([c]) => c === column)]!).map((e) => e.v);
  }

  /** SQL for the staged rows with the archive's columns and types (after close). */
  get select(): string {
    return `SELECT ${COLUMNS.map(([c, t], i) => `${this.value(i) ?? `NULL::${t}`} AS "${c}"`).join(', ')} FROM "${this.table}"`;
  }

  /** SQL for the staged rows as a segment holds them (layout.ts, layout 2), in its order (after close). */
  get segmentSelect(): string {
    const src = COLUMNS.findIndex(([c]) => c === 'src_ip');
    // Sorted on the codes' places in address order (integers), then turned into text: sorting text costs more.
    const order = this.present & (1 << src) ? `${this.list(src, 'rank')}["src_ip"], ` : '';
    const staged = COLUMNS.map(([c, t], i) => (KINDS[i] === Kind.Code ? `${this.value(i)!} AS "${c}"` : `${this.present & (1 << i) ? `"${c}"` : `NULL::${KINDS[i] === Kind.Addr ? 'INTEGER' : t}`} AS "${c}"`));
    const v4: Parameters<typeof physical>[0] = {};
    for (const a of ADDRESS_COLUMNS) {
      const i = COLUMNS.findIndex(([c]) => c === a);
      v4[a] = this.present & (1 << i) ? { num: `${this.list(i, 'n')}[${a}]`, text: `CASE WHEN ${this.list(i, 'n')}[${a}] IS NULL THEN ${this.list(i, 'v')}[${a}] END` } : { num: 'NULL::UINTEGER', text: 'NULL::VARCHAR' };
    }
    return `SELECT ${physical(v4)} FROM (SELECT ${staged.join(', ')} FROM (SELECT * FROM "${this.table}" ORDER BY ${order}recv_ms))`;
  }

  /** A dictionary field of column i as a list, in SQL (a code is its index). */
  private list(i: number, field: 'v' | 'n' | 'rank'): string {
    return `(SELECT list(${field} ORDER BY code) FROM "${this.table}_dict" WHERE col = ${i})`;
  }

  /** Column i's value in SQL (text for coded columns), or null when no frame had it. */
  private value(i: number): string | null {
    if (!(this.present & (1 << i))) return null;
    const c = `"${COLUMNS[i]![0]}"`;
    return KINDS[i] === Kind.Code || KINDS[i] === Kind.Addr ? `${this.list(i, 'v')}[${c}]` : c;
  }

  private received(v: number): void {
    if (v < this.firstRecv) this.firstRecv = v;
    if (v > this.lastRecv) this.lastRecv = v;
  }

  /** The code of the text in b[at, at + len): the previous row's, an IPv4 address's, or the dictionary's. */
  private codeAt(col: Column, b: Buffer, at: number, len: number): number {
    if (col.kind === Kind.Addr) {
      const n = ipv4At(b, at, len);
      if (n >= 0) {
        let c = col.v4.get(n | 0);
        if (c === undefined) col.v4.set(n | 0, (c = col.v4.size + col.codes.size + 1));
        return c;
      }
    } else if (len === col.lastLen) {
      let i = 0;
      while (i < len && b[at + i] === col.last[i]) i++;
      if (i === len) return col.lastCode;
    }
    const key = b.toString('latin1', at, at + len);
    let c = col.codes.get(key);
    if (c === undefined) col.codes.set(key, (c = col.v4.size + col.codes.size + 1));
    if (len <= LAST) {
      for (let i = 0; i < len; i++) col.last[i] = b[at + i]!;
      col.lastLen = len;
      col.lastCode = c;
    }
    return c;
  }

  private rowDone(): void {
    this.rows++;
    if (++this.n === this.size) this.appendChunk();
  }

  /** The table takes the columns of `columns` it lacks (rows before hold NULL there); appending starts again on the wider table. */
  private async widen(columns: number): Promise<void> {
    if (this.n > 0) this.appendChunk();
    this.app?.closeSync();
    const added = COLUMNS.map((_, i) => i).filter((i) => columns & ~this.present & (1 << i));
    for (const i of added) await this.con.run(`ALTER TABLE "${this.table}" ADD COLUMN "${COLUMNS[i]![0]}" ${SQL_TYPE[KINDS[i]!]}`);
    if (this.present === 0) await this.con.run(`ALTER TABLE "${this.table}" DROP COLUMN _`);
    this.present |= columns;
    this.order.push(...added);
    this.app = await this.con.createAppender(this.table);
    this.chunk = DuckDBDataChunk.create(this.order.map((i) => DUCK_TYPE[KINDS[i]!]));
    this.vectors();
  }

  private vectors(): void {
    this.order.forEach((i, at) => (this.cols[i]!.vector = duckdb.data_chunk_get_vector(this.chunk!.chunk, at)));
  }

  /** The filled part of the arrays into the chunk, the chunk into the table; then a fresh chunk. */
  private appendChunk(): void {
    const n = this.n;
    for (const i of this.order) {
      const col = this.cols[i]!;
      const v = col.vector!;
      if (col.kind !== Kind.Text && col.kind !== Kind.Blob) duckdb.copy_data_to_vector(v, 0, col.data, 0, n * WIDTH[col.kind]);
      duckdb.vector_ensure_validity_writable(v);
      duckdb.copy_data_to_vector_validity(v, 0, col.valid.buffer, 0, col.valid.length);
    }
    for (const col of this.cols) col.valid.fill(0xff);
    duckdb.data_chunk_set_size(this.chunk!.chunk, n);
    this.app!.appendDataChunk(this.chunk!);
    duckdb.data_chunk_reset(this.chunk!.chunk);
    this.vectors();
    this.n = 0;
  }
}

/** A code or address column's dictionary: each code with its text, and an IPv4 address's number. */
function dictionary(col: Column): { code: number; v: string; n: number | null }[] {
  const entries: { code: number; v: string; n: number | null }[] = [];
  for (const [n, code] of col.v4) entries.push({ code, v: v4String(n), n: n >>> 0 });
  for (const [key, code] of col.codes) entries.push({ code, v: Buffer.from(key, 'latin1').toString('utf8'), n: null });
  return entries;
}
