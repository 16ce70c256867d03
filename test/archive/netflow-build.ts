// NetFlow v5 / v9 and IPFIX datagrams built byte by byte for the decoder's
// tests: templates with any field specs (length 0, 0xffff variable length,
// enterprise numbers), data sets of any bytes, headers with any sequence.
// Nothing here checks what it builds: hostile datagrams are the point.

/** [information element, length, enterprise number (IPFIX only)] */
export type FieldSpec = [id: number, length: number, pen?: number];

export interface TemplateSpec {
  id: number;
  fields: FieldSpec[];
  /** IPFIX: scope field count; v9: scope fields' bytes (count * 4). Makes it an options template. */
  scope?: number;
}

const u16 = (v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v & 0xffff);
  return b;
};
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};

/** A set: id, length (the real one unless `length` is given), body. */
export function set(id: number, body: Buffer, length = body.length + 4): Buffer {
  return Buffer.concat([u16(id), u16(length), body]);
}

/** A template set (v9: set 0 / 1 for options; IPFIX: 2 / 3). */
export function templateSet(version: 9 | 10, templates: TemplateSpec[]): Buffer {
  const options = templates.some((t) => t.scope !== undefined);
  const parts: Buffer[] = [];
  for (const t of templates) {
    if (options && version === 9) {
      // v9 options: id, scope length (bytes), option length (bytes), then fields.
      const scopeBytes = (t.scope ?? 0) * 4;
      parts.push(u16(t.id), u16(scopeBytes), u16(t.fields.length * 4 - scopeBytes));
    } else {
      parts.push(u16(t.id), u16(t.fields.length));
      if (options) parts.push(u16(t.scope ?? 0));
    }
    for (const [id, len, pen] of t.fields) {
      parts.push(u16(pen !== undefined && version === 10 ? id | 0x8000 : id), u16(len));
      if (pen !== undefined && version === 10) parts.push(u32(pen));
    }
  }
  return set(version === 9 ? (options ? 1 : 0) : options ? 3 : 2, Buffer.concat(parts));
}

export interface Header {
  seq?: number;
  /** v9 source id / IPFIX observation domain. */
  domain?: number;
  /** v9: exporter uptime (ms). */
  uptime?: number;
  /** Export time, UNIX seconds. */
  unix?: number;
}

export function v9(h: Header, ...sets: Buffer[]): Buffer {
  return Buffer.concat([u16(9), u16(sets.length), u32(h.uptime ?? 3_600_000), u32(h.unix ?? 1_795_000_000), u32(h.seq ?? 0), u32(h.domain ?? 0), ...sets]);
}

export function ipfix(h: Header, ...sets: Buffer[]): Buffer {
  const body = Buffer.concat(sets);
  return Buffer.concat([u16(10), u16(16 + body.length), u32(h.unix ?? 1_795_000_000), u32(h.seq ?? 0), u32(h.domain ?? 0), body]);
}

/** A v5 datagram of `count` flows (10.36.0.N -> 192.0.2.N, N = first + i; bytes = 1000 + N). */
export function v5(h: Header & { engine?: number }, count: number, first = 1): Buffer {
  const b = Buffer.alloc(24 + count * 48);
  b.writeUInt16BE(5, 0);
  b.writeUInt16BE(count, 2);
  b.writeUInt32BE((h.uptime ?? 3_600_000) >>> 0, 4);
  b.writeUInt32BE(h.unix ?? 1_795_000_000, 8);
  b.writeUInt32BE((h.seq ?? 0) >>> 0, 16);
  b.writeUInt16BE(h.engine ?? 0, 20);
  for (let i = 0; i < count; i++) {
    const o = 24 + i * 48;
    const n = (first + i) & 0xff;
    b.set([10, 36, 0, n], o);
    b.set([192, 0, 2, n], o + 4);
    b.writeUInt32BE(1, o + 16);
    b.writeUInt32BE(1000 + first + i, o + 20);
    b.writeUInt16BE(40000, o + 32);
    b.writeUInt16BE(443, o + 34);
    b[o + 38] = 6;
  }
  return b;
}

/** A flow template: source and destination IPv4, ports, protocol, octets (4 bytes): 17 bytes a record. */
export const FLOW_FIELDS: FieldSpec[] = [
  [8, 4],
  [12, 4],
  [7, 2],
  [11, 2],
  [4, 1],
  [1, 4],
];

/** Records for FLOW_FIELDS whose octet counts are `marks` (each record can be told apart by it). */
export function flowRecords(marks: number[]): Buffer {
  return Buffer.concat(
    marks.map((m, i) => {
      const r = Buffer.alloc(17);
      r.set([10, 36, 1, (i % 250) + 1], 0);
      r.set([203, 0, 113, (m % 250) + 1], 4);
      r.writeUInt16BE(40000 + i, 8);
      r.writeUInt16BE(443, 10);
      r[12] = 6;
      r.writeUInt32BE(m >>> 0, 13);
      return r;
    }),
  );
}

/** IPFIX flow template with a variable-length userName (IE 371) after FLOW_FIELDS. */
export const USER_FIELDS: FieldSpec[] = [...FLOW_FIELDS, [371, 0xffff]];

/** Records for USER_FIELDS: each FLOW_FIELDS record followed by a one-byte length and the user name. */
export function userRecords(marks: number[], user = 'somchai'): Buffer {
  return Buffer.concat(marks.map((m) => Buffer.concat([flowRecords([m]), Buffer.from([user.length]), Buffer.from(user)])));
}
