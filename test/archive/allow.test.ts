// traffic.allow: who may send logs and flows. The filter is built from a
// real configuration loaded from YAML (inventory addresses and CIDRs), and
// the address parser is checked against Node's own (net.isIP, SocketAddress)
// on generated addresses, so that what the socket hands over is read the
// way the kernel meant it.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { fc, test as prop } from '@fast-check/vitest';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { isIP, BlockList } from 'node:net';
import { loadConfig, ConfigError } from '../../config/load.ts';
import { parseAddress, parsePrefix } from '../../config/cidr.ts';
import { senderFilter, allowList } from '../../archive/allow.ts';
import { tempDir } from '../helpers/peers.ts';

const SEED = 20261124;
const RUNS = Number(process.env.KW_FUZZ_RUNS ?? 300);

let dir: ReturnType<typeof tempDir>;
beforeAll(() => {
  dir = tempDir('allow');
});
afterAll(() => dir.remove());

let n = 0;
/** A settings file with a traffic section (`allow` as YAML lines, or none) and an inventory of two devices. */
function settings(allow: string | null): string {
  const d = join(dir.path, String(n++));
  mkdirSync(d);
  writeFileSync(
    join(d, 'area.yaml'),
    [
      'area: { code: t, name_th: ทดสอบ }',
      'inventory: schools.yaml',
      'influx: { url: "http://127.0.0.1:1" }',
      'snmp:',
      '  credentials:',
      '    default: { version: 2c, community: public }',
      'traffic:',
      '  signing_key: key.pem',
      ...(allow === null ? [] : ['  allow:', ...allow.split('\n').map((l) => `    ${l}`)]),
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(d, 'schools.yaml'),
    [
      'schools:',
      '  - code: "1036090101"',
      '    name_th: โรงเรียนบ้านหนองบัวแดง',
      '    devices:',
      '      - { id: r1, kind: router, address: 10.36.1.1, snmp: default }',
      '      - { id: r2, kind: router, address: "2001:db8:36:2::1", snmp: default }',
      '      - { id: s1, kind: server, address: mail.school.example, snmp: default }',
      '',
    ].join('\n'),
  );
  return join(d, 'area.yaml');
}

function problems(path: string): string[] {
  try {
    loadConfig(path, { env: {}, cwd: dir.path });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split('\n');
  }
  throw new Error('expected a ConfigError');
}

describe('traffic.allow', () => {
  it('absent: no filter, everyone may send (the behaviour before the setting)', () => {
    expect(senderFilter(loadConfig(settings(null), { env: {} }))).toBeNull();
  });

  it("inventory devices' addresses and the CIDRs may send; nobody else, whatever form the socket gives the address in", () => {
    const allowed = senderFilter(loadConfig(settings('cidrs: [127.60.0.0/24, 192.0.2.7, "2001:db8:ff::/48", "::1"]'), { env: {} }))!;
    expect(allowed).toBeTypeOf('function');
    // Inventory (default inventory: true); the device given by host name is not resolved.
    expect(allowed('10.36.1.1')).toBe(true);
    expect(allowed('::ffff:10.36.1.1')).toBe(true); // a dual-stack socket's IPv4 sender
    expect(allowed('::FFFF:0a24:0101')).toBe(true); // the same, written in hex
    expect(allowed('2001:db8:36:2::1')).toBe(true);
    expect(allowed('2001:0db8:0036:0002:0000:0000:0000:0001')).toBe(true);
    expect(allowed('10.36.1.2')).toBe(false);
    expect(allowed('2001:db8:36:2::2')).toBe(false);
    // CIDRs: a /24, a single address, an IPv6 /48 and ::1.
    expect(allowed('127.60.0.0')).toBe(true);
    expect(allowed('127.60.0.255')).toBe(true);
    expect(allowed('127.60.1.0')).toBe(false);
    expect(allowed('127.59.255.255')).toBe(false);
    expect(allowed('192.0.2.7')).toBe(true);
    expect(allowed('192.0.2.8')).toBe(false);
    expect(allowed('2001:db8:ff:ffff:1:2:3:4')).toBe(true);
    expect(allowed('2001:db8:100::1')).toBe(false);
    expect(allowed('::1')).toBe(true);
    expect(allowed('fe80::1%lo')).toBe(false);
    // Not addresses at all: refused, never thrown.
    for (const junk of ['', 'localhost', '10.36.1.1 ', '10.36.1', '10.36.1.1.1', '10.36.01.1', '::ffff:10.36.1.256', ':::', '1:2:3:4:5:6:7:8:9', 'x'.repeat(10_000)]) {
      expect(allowed(junk), junk.slice(0, 30)).toBe(false);
    }
  });

  it('inventory: false allows only the CIDRs; an IPv4 /0 allows every IPv4 sender and no IPv6 one', () => {
    const only = senderFilter(loadConfig(settings('inventory: false\ncidrs: [127.0.0.0/8]'), { env: {} }))!;
    expect(only('10.36.1.1')).toBe(false);
    expect(only('127.1.2.3')).toBe(true);
    const none = senderFilter(loadConfig(settings('inventory: false'), { env: {} }))!;
    expect(none('127.0.0.1')).toBe(false);
    const all4 = senderFilter(loadConfig(settings('inventory: false\ncidrs: [0.0.0.0/0]'), { env: {} }))!;
    expect(all4('203.0.113.9')).toBe(true);
    expect(all4('::ffff:203.0.113.9')).toBe(true);
    expect(all4('2001:db8::1')).toBe(false);
  });

  it('a bad CIDR is refused when the settings load, naming traffic.allow.cidrs[i], the file and line, and what is wrong', () => {
    const bad = problems(settings('cidrs:\n  - 10.0.0.0/8\n  - 10.0.0.300/8\n  - 10.1.2.3/8\n  - "2001:db8::/129"\n  - fe80::1%eth0\n  - 10.0.0.0/x'));
    const where = (i: number) => bad.find((l) => l.includes(`traffic.allow.cidrs[${i}]`));
    expect(where(0)).toBeUndefined();
    expect(where(1)).toMatch(/area\.yaml:\d+: traffic\.allow\.cidrs\[1\]: must be an IPv4 or IPv6 address or prefix .*got "10\.0\.0\.300\/8" \("10\.0\.0\.300" is not an IPv4 or IPv6 address\)/);
    expect(where(2)).toMatch(/traffic\.allow\.cidrs\[2\]: .*10\.1\.2\.3\/8 has bits set after the first 8; write the network, 10\.0\.0\.0\/8/);
    expect(where(3)).toMatch(/traffic\.allow\.cidrs\[3\]: .*prefix length "129" must be 0 to 128/);
    expect(where(4)).toMatch(/traffic\.allow\.cidrs\[4\]: .*zone/);
    expect(where(5)).toMatch(/traffic\.allow\.cidrs\[5\]: .*prefix length "x"/);
    // A line number points at the entry itself.
    expect(where(1)).toMatch(/area\.yaml:12:/);
    expect(problems(settings('cidr: [10.0.0.0/8]'))[0]).toMatch(/traffic\.allow: unknown key "cidr"/);
  });
});

describe('address parsing (config/cidr.ts) against Node', () => {
  prop.prop([fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.string({ maxLength: 46 }), fc.stringMatching(/^[0-9a-fA-F:.]{1,46}$/))], { seed: SEED, numRuns: RUNS * 5 })(
    'parseAddress accepts exactly what net.isIP accepts (but leading-zero IPv4 parts, read as octal elsewhere) and reads the same address as net.BlockList',
    (s) => {
      const a = parseAddress(s);
      const node = isIP(s);
      const leadingZero = /(^|[.:])0\d/.test(s) && s.includes('.');
      if (leadingZero) return;
      expect(a !== null, s).toBe(node !== 0);
      if (!a) return;
      // The same address: BlockList matches it against itself as a /32 or /128.
      const b = new BlockList();
      if (a.v === 4) {
        const text = `${a.n >>> 24}.${(a.n >>> 16) & 255}.${(a.n >>> 8) & 255}.${a.n & 255}`;
        b.addAddress(text, 'ipv4');
        expect(b.check(s, node === 4 ? 'ipv4' : 'ipv6'), s).toBe(true);
      } else {
        const text = a.n.toString(16).padStart(32, '0').match(/.{4}/g)!.join(':');
        b.addAddress(text, 'ipv6');
        expect(b.check(s, 'ipv6'), s).toBe(true);
      }
    },
  );

  const prefix4 = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 })).map(([n, bits]) => ({ n: bits === 0 ? 0 : (n - (n % 2 ** (32 - bits))) >>> 0, bits }));
  const v4 = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  prop.prop([fc.array(prefix4, { maxLength: 20 }), fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 50 })], { seed: SEED, numRuns: RUNS })(
    'an IPv4 allow list answers as net.BlockList does with the same subnets',
    (prefixes, addresses) => {
      const ours = allowList(prefixes.map((p) => parsePrefix(`${v4(p.n)}/${p.bits}`) as Exclude<ReturnType<typeof parsePrefix>, string>));
      const ref = new BlockList();
      for (const p of prefixes) ref.addSubnet(v4(p.n), p.bits, 'ipv4');
      // Addresses near the prefixes' edges as well as random ones.
      const probe = [...addresses, ...prefixes.flatMap((p) => [p.n, (p.n + 2 ** (32 - p.bits) - 1) >>> 0, (p.n + 2 ** (32 - p.bits)) >>> 0, (p.n - 1) >>> 0])];
      for (const a of probe) expect(ours(v4(a)), v4(a)).toBe(ref.check(v4(a), 'ipv4'));
    },
  );

  prop.prop([fc.array(fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })), { maxLength: 10 }), fc.array(fc.ipV6(), { minLength: 1, maxLength: 30 })], { seed: SEED, numRuns: RUNS })(
    'an IPv6 allow list answers as net.BlockList does with the same subnets',
    (prefixes, addresses) => {
      const nets = prefixes
        .map(([addr, bits]) => {
          const a = parseAddress(addr);
          if (!a || a.v !== 6) return null;
          const host = (1n << BigInt(128 - bits)) - 1n;
          const n = a.n & ~host;
          return { text: n.toString(16).padStart(32, '0').match(/.{4}/g)!.join(':'), bits };
        })
        .filter((p) => p !== null);
      const ours = allowList(nets.map((p) => parsePrefix(`${p.text}/${p.bits}`) as Exclude<ReturnType<typeof parsePrefix>, string>));
      const ref = new BlockList();
      for (const p of nets) ref.addSubnet(p.text, p.bits, 'ipv6');
      for (const a of [...addresses, ...prefixes.map(([x]) => x)]) {
        if (parseAddress(a)?.v !== 6) continue; // IPv4-mapped: read as IPv4 by design
        expect(ours(a), a).toBe(ref.check(a, 'ipv6'));
      }
    },
  );
});
