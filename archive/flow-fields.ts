// What the bytes of a NetFlow v9 / IPFIX field mean: the information
// elements klaiwatch keeps, the lengths each may have, and the text of
// addresses as the archive stores them.

// What a template field does with its bytes.
export const SKIP = 0;
export const BYTES = 1;
export const PACKETS = 2;
export const PROTO = 3;
export const SRC_PORT = 4;
export const DST_PORT = 5;
export const SRC_V4 = 6;
export const DST_V4 = 7;
export const SRC_V6 = 8;
export const DST_V6 = 9;
export const NAT_V4 = 10;
export const NAT_V6 = 11;
export const NAT_PORT = 12;
export const MAC = 13;
export const START_UPTIME = 14;
export const END_UPTIME = 15;
export const START_SEC = 16;
export const END_SEC = 17;
export const START_MS = 18;
export const END_MS = 19;
export const START_NTP = 20;
export const END_NTP = 21;
export const USER = 22;

/** The IANA information elements klaiwatch keeps, and the field lengths each may have (RFC 7011 reduced-size encoding for integers). */
export interface Known {
  op: number;
  name: string;
  min: number;
  max: number;
  /** May be sent as a variable-length field (0xffff). */
  variable?: true;
}
export const KNOWN = new Map<number, Known>([
  [1, { op: BYTES, name: 'octetDeltaCount', min: 1, max: 8 }],
  [2, { op: PACKETS, name: 'packetDeltaCount', min: 1, max: 8 }],
  [4, { op: PROTO, name: 'protocolIdentifier', min: 1, max: 1 }],
  [7, { op: SRC_PORT, name: 'sourceTransportPort', min: 1, max: 2 }],
  [8, { op: SRC_V4, name: 'sourceIPv4Address', min: 4, max: 4 }],
  [11, { op: DST_PORT, name: 'destinationTransportPort', min: 1, max: 2 }],
  [12, { op: DST_V4, name: 'destinationIPv4Address', min: 4, max: 4 }],
  [21, { op: END_UPTIME, name: 'flowEndSysUpTime', min: 1, max: 4 }],
  [22, { op: START_UPTIME, name: 'flowStartSysUpTime', min: 1, max: 4 }],
  [27, { op: SRC_V6, name: 'sourceIPv6Address', min: 16, max: 16 }],
  [28, { op: DST_V6, name: 'destinationIPv6Address', min: 16, max: 16 }],
  [56, { op: MAC, name: 'sourceMacAddress', min: 6, max: 6 }],
  [85, { op: BYTES, name: 'octetTotalCount', min: 1, max: 8 }],
  [86, { op: PACKETS, name: 'packetTotalCount', min: 1, max: 8 }],
  [150, { op: START_SEC, name: 'flowStartSeconds', min: 4, max: 4 }],
  [151, { op: END_SEC, name: 'flowEndSeconds', min: 4, max: 4 }],
  [152, { op: START_MS, name: 'flowStartMilliseconds', min: 8, max: 8 }],
  [153, { op: END_MS, name: 'flowEndMilliseconds', min: 8, max: 8 }],
  [154, { op: START_NTP, name: 'flowStartMicroseconds', min: 8, max: 8 }],
  [155, { op: END_NTP, name: 'flowEndMicroseconds', min: 8, max: 8 }],
  [225, { op: NAT_V4, name: 'postNATSourceIPv4Address', min: 4, max: 4 }],
  [227, { op: NAT_PORT, name: 'postNAPTSourceTransportPort', min: 1, max: 2 }],
  [281, { op: NAT_V6, name: 'postNATSourceIPv6Address', min: 16, max: 16 }],
  [371, { op: USER, name: 'userName', min: 1, max: 0xfffe, variable: true }],
]);
export const ADDRESS_OPS = new Set([SRC_V4, DST_V4, SRC_V6, DST_V6, NAT_V4, NAT_V6, MAC]);
/** RFC 5103 biflows: the reverse direction's counters under this enterprise number. */
export const REVERSE_PEN = 29305;
export const VARIABLE = 0xffff;

// An address as text, written into a scratch buffer and read back as one
// flat string: the write-ahead log's encoder reads addresses character by
// character, and a string made by concatenation is slow to read that way.
const scratch = Buffer.alloc(48);

export function ipv4(b: Buffer, o: number): string {
  let n = 0;
  for (let i = 0; i < 4; i++) {
    const v = b[o + i]!;
    if (i > 0) scratch[n++] = 0x2e;
    if (v >= 100) scratch[n++] = 0x30 + ((v / 100) | 0);
    if (v >= 10) scratch[n++] = 0x30 + (((v / 10) | 0) % 10);
    scratch[n++] = 0x30 + (v % 10);
  }
  return scratch.toString('latin1', 0, n);
}

const HEX = Buffer.from('0123456789abcdef', 'latin1');

/** One 16-bit group in hex without leading zeros, at scratch[n]; returns the new n. */
function hexGroup(v: number, n: number): number {
  if (v >= 0x1000) scratch[n++] = HEX[v >> 12]!;
  if (v >= 0x100) scratch[n++] = HEX[(v >> 8) & 15]!;
  if (v >= 0x10) scratch[n++] = HEX[(v >> 4) & 15]!;
  scratch[n++] = HEX[v & 15]!;
  return n;
}

/** RFC 5952 text, as inet_ntop writes it: the longest run of two or more zero groups as "::". */
export function ipv6(b: Buffer, o: number): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (b[o + 2 * i] !== 0 || b[o + 2 * i + 1] !== 0) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < 8 && b[o + 2 * j] === 0 && b[o + 2 * j + 1] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  let n = 0;
  for (let i = 0; i < 8; i++) {
    if (i === best) {
      scratch[n++] = 0x3a;
      if (i === 0) scratch[n++] = 0x3a;
      i += bestLen - 1;
      continue;
    }
    n = hexGroup((b[o + 2 * i]! << 8) | b[o + 2 * i + 1]!, n);
    if (i < 7) scratch[n++] = 0x3a;
  }
  return scratch.toString('latin1', 0, n);
}

export function uint(b: Buffer, o: number, len: number): number {
  switch (len) {
    case 1:
      return b[o]!;
    case 2:
      return b.readUInt16BE(o);
    case 4:
      return b.readUInt32BE(o);
    case 8:
      return Number(b.readBigUInt64BE(o));
    default: {
      let v = 0;
      for (let i = 0; i < len; i++) v = v * 256 + b[o + i]!;
      return v;
    }
  }
}

export function mac(b: Buffer, o: number): string {
  let n = 0;
  for (let i = 0; i < 6; i++) {
    if (i > 0) scratch[n++] = 0x3a;
    scratch[n++] = HEX[b[o + i]! >> 4]!;
    scratch[n++] = HEX[b[o + i]! & 15]!;
  }
  return scratch.toString('latin1', 0, n);
}

/** IPFIX dateTimeMicroseconds: NTP format (seconds since 1900, fraction). */
export function ntpMs(b: Buffer, o: number): number {
  const sec = b.readUInt32BE(o) - 2_208_988_800;
  const frac = b.readUInt32BE(o + 4);
  return sec * 1000 + Math.floor((frac / 2 ** 32) * 1000);
}
