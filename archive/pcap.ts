// The UDP datagrams of a pcap file, in order: how captured exporter traffic
// (test/fixtures/netflow/*.pcap) is replayed to a receiver, as nfdump's
// own tests do. Link types: Ethernet, Linux cooked (SLL), raw IP, BSD loopback.
export interface UdpDatagram {
  src: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

export function udpPayloads(file: Buffer): UdpDatagram[] {
  const magic = file.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && file.readUInt32BE(0) !== 0xa1b2c3d4 && file.readUInt32BE(0) !== 0xa1b23c4d) throw new Error('not a pcap file (pcapng is not read)');
  const u32 = (o: number) => (le ? file.readUInt32LE(o) : file.readUInt32BE(o));
  const link = u32(20);
  const out: UdpDatagram[] = [];
  for (let o = 24; o + 16 <= file.length; ) {
    const incl = u32(o + 8);
    const pkt = file.subarray(o + 16, o + 16 + incl);
    o += 16 + incl;
    let ip = 0;
    if (link === 1) {
      let type = pkt.readUInt16BE(12);
      ip = 14;
      if (type === 0x8100) {
        type = pkt.readUInt16BE(16);
        ip = 18;
      }
      if (type !== 0x0800 && type !== 0x86dd) continue;
    } else if (link === 113) ip = 16;
    else if (link === 0 || link === 108) ip = 4;
    else if (link !== 101 && link !== 12) continue;
    const version = pkt[ip]! >> 4;
    let udp: number;
    let src: string;
    if (version === 4) {
      if (pkt[ip + 9] !== 17) continue;
      udp = ip + (pkt[ip]! & 0x0f) * 4;
      src = [...pkt.subarray(ip + 12, ip + 16)].join('.');
    } else if (version === 6) {
      if (pkt[ip + 6] !== 17) continue;
      udp = ip + 40;
      src = [...Array(8).keys()].map((i) => pkt.readUInt16BE(ip + 8 + i * 2).toString(16)).join(':');
    } else continue;
    const len = pkt.readUInt16BE(udp + 4);
    out.push({ src, srcPort: pkt.readUInt16BE(udp), dstPort: pkt.readUInt16BE(udp + 2), payload: Buffer.from(pkt.subarray(udp + 8, udp + len)) });
  }
  return out;
}
