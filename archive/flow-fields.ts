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
// Sampling (RFC 7011 IEs 34, 48-50, 302, 305, 306), in data and options records.
export const SAMPLING_INTERVAL = 23;
export const SAMPLER_ID = 24;
export const RANDOM_INTERVAL = 25;
export const PACKET_INTERVAL = 26;
export const PACKET_SPACE = 27;
// NAT events (RFC 8158).
export const NAT_EVENT = 28;
export const POST_DST_V4 = 29;
export const POST_DST_V6 = 30;
export const POST_DST_PORT = 31;
// RFC 7133: a section of the frame itself, and the frame's size.
export const FRAME = 32;
export const FRAME_SIZE = 33;
export const OBS_MS = 34;

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
  [34, { op: SAMPLING_INTERVAL, name: 'samplingInterval', min: 1, max: 4 }],
  [48, { op: SAMPLER_ID, name: 'samplerId', min: 1, max: 8 }],
  [50, { op: RANDOM_INTERVAL, name: 'samplerRandomInterval', min: 1, max: 4 }],
  [302, { op: SAMPLER_ID, name: 'selectorId', min: 1, max: 8 }],
  [305, { op: PACKET_INTERVAL, name: 'samplingPacketInterval', min: 1, max: 4 }],
  [306, { op: PACKET_SPACE, name: 'samplingPacketSpace', min: 1, max: 4 }],
  [230, { op: NAT_EVENT, name: 'natEvent', min: 1, max: 1 }],
  [226, { op: POST_DST_V4, name: 'postNATDestinationIPv4Address', min: 4, max: 4 }],
  [228, { op: POST_DST_PORT, name: 'postNAPTDestinationTransportPort', min: 1, max: 2 }],
  [282, { op: POST_DST_V6, name: 'postNATDestinationIPv6Address', min: 16, max: 16 }],
  [312, { op: FRAME_SIZE, name: 'dataLinkFrameSize', min: 1, max: 2 }],
  [315, { op: FRAME, name: 'dataLinkFrameSection', min: 1, max: 0xfffe, variable: true }],
  [323, { op: OBS_MS, name: 'observationTimeMilliseconds', min: 8, max: 8 }],
]);
export const ADDRESS_OPS = new Set([SRC_V4, DST_V4, SRC_V6, DST_V6, NAT_V4, NAT_V6, MAC, POST_DST_V4, POST_DST_V6, FRAME]);
/** What an options record may say about a sampler (the rest of an options template is skipped). */
export const SAMPLER_OPS = new Set([SAMPLING_INTERVAL, SAMPLER_ID, RANDOM_INTERVAL, PACKET_INTERVAL, PACKET_SPACE]);
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

// ---------------------------------------------------------------- frames (IE 315)

/** Headers a frame section is read through at most (tags, label stacks, tunnels, extension headers): the loop is bounded. */
const MAX_HEADERS = 24;

/** What a frame section said (filled by frameSection; one object, reused). */
export const frameFacts = { src: null as string | null, dst: null as string | null, sport: -1, dport: -1, proto: -1, mac: null as string | null };

/**
 * Reads an RFC 7133 dataLinkFrameSection, b[at, at + len): Ethernet, 802.1Q
 * and 802.1ad tags (QinQ), an MPLS label stack (then IPv4, IPv6, or a
 * pseudowire's control word and the customer's Ethernet frame: EoMPLS,
 * EVPN), IPv4, IPv6 with its extension headers (an SRv6 segment routing
 * header among them), IP in IP and Ethernet in IPv6 (the innermost packet is
 * the user's), then TCP, UDP or SCTP ports. A section cut short (exporters
 * send the first 64-128 bytes) gives what it holds. Into `frameFacts`;
 * returns the frame's length as its first IP header gives it, or -1.
 */
export function frameSection(b: Buffer, at: number, len: number): number {
  const f = frameFacts;
  f.src = f.dst = f.mac = null;
  f.sport = f.dport = f.proto = -1;
  const end = at + len;
  let o = at;
  let frameLen = -1;
  let type = -1;
  let ether = true;
  for (let step = 0; step < MAX_HEADERS; step++) {
    if (ether) {
      if (end - o < 14) return frameLen;
      f.mac = mac(b, o + 6);
      type = b.readUInt16BE(o + 12);
      o += 14;
      ether = false;
      continue;
    }
    if (type === 0x8100 || type === 0x88a8 || type === 0x9100) {
      if (end - o < 4) return frameLen;
      type = b.readUInt16BE(o + 2);
      o += 4;
    } else if (type === 0x8847 || type === 0x8848) {
      // Labels to the bottom of the stack (S bit).
      let bottom = false;
      for (let k = 0; k < MAX_HEADERS && !bottom; k++) {
        if (end - o < 4) return frameLen;
        bottom = (b[o + 2]! & 1) === 1;
        o += 4;
      }
      if (!bottom || end - o < 1) return frameLen;
      const nibble = b[o]! >> 4;
      if (nibble === 4) type = 0x0800;
      else if (nibble === 6) type = 0x86dd;
      else {
        // A pseudowire: the control word (first nibble 0), then the customer's Ethernet frame.
        if (nibble === 0) o += 4;
        ether = true;
      }
    } else if (type === 0x0800) {
      if (end - o < 20 || b[o]! >> 4 !== 4) return frameLen;
      const ihl = (b[o]! & 15) * 4;
      if (frameLen < 0) frameLen = o - at + b.readUInt16BE(o + 2);
      const proto = b[o + 9]!;
      const fragment = b.readUInt16BE(o + 6) & 0x1fff;
      f.src = ipv4(b, o + 12);
      f.dst = ipv4(b, o + 16);
      f.proto = proto;
      if (ihl < 20) return frameLen;
      o += ihl;
      if (fragment !== 0) return frameLen;
      if (proto === 4) type = 0x0800;
      else if (proto === 41) type = 0x86dd;
      else return ports(b, o, end, proto, frameLen);
    } else if (type === 0x86dd) {
      if (end - o < 40 || b[o]! >> 4 !== 6) return frameLen;
      if (frameLen < 0) frameLen = o - at + 40 + b.readUInt16BE(o + 4);
      let next = b[o + 6]!;
      f.src = ipv6(b, o + 8);
      f.dst = ipv6(b, o + 24);
      o += 40;
      // Extension headers: hop-by-hop, routing (SRv6's segment routing header), fragment, destination options, AH.
      for (let k = 0; k < MAX_HEADERS && (next === 0 || next === 43 || next === 44 || next === 60 || next === 51); k++) {
        if (end - o < 8) {
          f.proto = next;
          return frameLen;
        }
        const size = next === 44 ? 8 : next === 51 ? (b[o + 1]! + 2) * 4 : (b[o + 1]! + 1) * 8;
        if (next === 44 && (b.readUInt16BE(o + 2) & 0xfff8) !== 0) {
          f.proto = b[o]!;
          return frameLen; // not the first fragment: no ports
        }
        next = b[o]!;
        o += size;
      }
      f.proto = next;
      if (next === 4) type = 0x0800;
      else if (next === 41) type = 0x86dd;
      else if (next === 143) ether = true;
      else return ports(b, o, end, next, frameLen);
    } else return frameLen;
  }
  return frameLen;
}

function ports(b: Buffer, o: number, end: number, proto: number, frameLen: number): number {
  if ((proto === 6 || proto === 17 || proto === 132) && end - o >= 4) {
    frameFacts.sport = b.readUInt16BE(o);
    frameFacts.dport = b.readUInt16BE(o + 2);
  }
  return frameLen;
}
