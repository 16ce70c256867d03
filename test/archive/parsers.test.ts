// The parsers on the real log lines of test/fixtures/logs (SOURCES.md names
// each line's origin and the facts to take from it): which parser takes
// each line, and the facts it takes.
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseLogLine, PARSE_LIMIT } from '../../archive/parsers.ts';
import { parseSyslog } from '../../archive/syslog.ts';
import { FLAG_CUT, FLAG_PARSE_LIMIT } from '../../archive/record.ts';
import { sessions } from '../../archive/identity.ts';
import { PROJECT } from '../../sim/area.ts';

const dir = join(PROJECT, 'test', 'fixtures', 'logs');
const RECV = Date.parse('2026-11-24T10:00:00+07:00');
const parse = (line: string) => parseLogLine(line, { exporter: '127.0.0.1', recvMs: RECV, utcOffsetMinutes: 420 });
const lines = (f: string) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean);

describe('parsers on real lines', () => {
  it('every line is taken by the parser for its source, or kept raw when it carries no traffic fact', () => {
    const count: Record<string, number> = {};
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.log'))) {
      for (const l of lines(f)) {
        const r = parse(l);
        expect(r.raw).toBe(l);
        count[`${f}: ${r.parser}`] = (count[`${f}: ${r.parser}`] ?? 0) + 1;
      }
    }
    expect(count).toEqual({
      'cisco-asa.log: cisco-asa': 20,
      'cisco-asa-302013.log: cisco-asa': 6,
      'freeradius-unknown.log: radius': 3,
      'mikrotik-dstnat.log: mikrotik-firewall': 3,
      'routeros-login.log: mikrotik-login': 8,
      'strongswan.log: strongswan': 9,
      'strongswan.log: syslog': 1, // the gateway's own authentication ("(myself)"): not a peer's
      'freeradius-radius.log: radius': 7,
      'isc-dhcpd.log: isc-dhcp': 21,
      'isc-dhcpd.log: syslog': 2, // "Listening on" / "Sending on": no lease
      'mikrotik-firewall.log: mikrotik-firewall': 6,
      'mikrotik-firewall.log: mikrotik-hotspot': 1,
      'mikrotik-firewall.log: mikrotik-dhcp': 1,
      'nginx-access.log: web-access': 6,
      'pfsense-filterlog.log: filterlog': 11,
      'postfix.log: postfix': 9,
      'rfc5424.log: filterlog': 3,
      'rfc5424.log: syslog': 4, // strongSwan (charon): no parser, kept raw
      'squid-access.log: squid': 13,
    });
  });

  it('RouterOS: NAT translation, IPv6 in brackets, MAC, rule label and chain, hotspot user, DHCP release', () => {
    const [v4, , v6, nat, hotspot, dhcp] = lines('mikrotik-firewall.log').map(parse);
    expect(v4).toMatchObject({ dev_ms: Date.parse('2023-03-18T20:35:05.734+01:00'), host: '10.120.127.1', src_ip: '186.26.78.68', src_port: 44355, dst_ip: '81.82.202.145', dst_port: 53, proto: 17, mac: '00:17:10:88:bc:02', action: 'drop-in input', bytes: 65 });
    expect(v6).toMatchObject({ src_ip: '2001:db8:1234::1', dst_ip: '2001:db8:1234::2', dst_port: 20461, proto: 6 });
    expect(nat).toMatchObject({ src_ip: '192.168.20.171', src_port: 43996, nat_ip: '125.25.69.110', nat_port: 43996, dst_ip: '47.241.18.42', dst_port: 443, dev_ms: null });
    expect(hotspot).toMatchObject({ user: 'seubpong.mon', src_ip: '192.168.20.29', action: 'logged in' });
    expect(dhcp).toMatchObject({ action: 'deassigned', src_ip: '192.168.65.149', mac: '04:d3:b5:fc:e8:09', host: '192.168.65.1' });
  });

  it('ISC dhcpd: lease, MAC, client name, lease time; a BSD time without a year is this year, or last year if it would be ahead', () => {
    const all = lines('isc-dhcpd.log').map(parse);
    expect(all[3]).toMatchObject({ action: 'DHCPACK', src_ip: '10.150.60.56', mac: '4c:55:41:a0:fa:99', client: 'computer-name', dev_ms: Date.parse('2026-07-04T09:39:41+07:00') });
    // "Dec 31" read on 24 November 2026 is 31 December 2025.
    expect(all[6]!.dev_ms).toBe(Date.parse('2025-12-31T22:06:16+07:00'));
    // Infoblox writes two host tokens.
    expect(all.find((r) => r.host === 'infoblox.localdomain 10.0.0.1')).toMatchObject({ app: 'dhcpd', action: 'DHCPDISCOVER' });
    const offer = all.find((r) => r.action === 'DHCPOFFER' && r.client === 'DESKTOP-ABCD')!;
    expect(offer.end_ms! - offer.start_ms!).toBe(119_000);
  });

  it('FreeRADIUS: logins with user and calling station, and an accounting detail record', () => {
    const [machine, tls] = lines('freeradius-radius.log').map(parse);
    expect(machine).toMatchObject({ user: 'host/hostname.example.org', client: 'WLAN', mac: '00:11:22:33:44:55', action: 'Login OK' });
    expect(tls).toMatchObject({ user: 'john.doe@example.org', src_ip: '1.2.3.4' });
    const detail = parse(readFileSync(join(dir, 'freeradius-detail.txt'), 'utf8'));
    expect(detail).toMatchObject({ parser: 'radius-acct', user: 'bob', action: 'Start', client: '10.10.0.179', dev_ms: 1_554_226_681_000 });
  });

  it('Squid, filterlog (IPv4 and IPv6), Cisco ASA translation and teardown', () => {
    expect(parse(lines('squid-access.log')[0]!)).toMatchObject({ src_ip: '10.105.21.199', user: 'badeyek', url: 'login.yahoo.com:443', dst_port: 443, action: 'CONNECT TCP_MISS/200', bytes: 19763, dev_ms: 1_157_689_312_049 });
    const fl = lines('pfsense-filterlog.log').map(parse);
    expect(fl[0]).toMatchObject({ action: 'block in igb1.12', src_ip: '10.170.12.50', src_port: 49724, dst_ip: '1.1.1.1', dst_port: 853, proto: 6 });
    expect(fl.find((r) => r.src_ip?.includes(':'))).toMatchObject({ src_ip: 'fe80::208:9bff:fef3:652b', dst_ip: 'ff02::1:2', dst_port: 547, proto: 17 });
    const asa = lines('cisco-asa.log').map(parse);
    expect(asa[0]).toMatchObject({ src_ip: '172.31.98.44', src_port: 1772, nat_ip: '100.66.98.44', nat_port: 8256, proto: 6 });
    expect(asa[2]).toMatchObject({ src_ip: '172.31.98.44', dst_ip: '100.66.211.242', dst_port: 80, bytes: 38110 });
  });

  it('RouterOS logins to the router: failures per service (an empty user is none), logins and logouts', () => {
    const all = lines('routeros-login.log').map(parse);
    expect(all[0]).toMatchObject({ user: 'root', src_ip: '10.0.0.1', action: 'login failure via telnet' });
    expect(all[1]).toMatchObject({ user: 'admin', src_ip: '203.0.113.77', action: 'login failure via winbox', host: 'gw-1036090106', dev_ms: Date.parse('2026-11-24T09:12:01+07:00') });
    expect(all[2]).toMatchObject({ user: null, src_ip: '203.0.113.77', action: 'login failure via ssh' });
    expect(all.slice(1, 6).map((r) => r.action!.split(' via ')[1])).toEqual(['winbox', 'ssh', 'web', 'api', 'ftp']);
    expect(all[6]).toMatchObject({ user: 'admin', src_ip: '10.36.1.20', action: 'logged in via winbox' });
    expect(all[7]).toMatchObject({ action: 'logged out via winbox' });
    // The same words elsewhere are not a login: no address, or no service.
    expect(parse('<58>Nov 24 09:12:01 gw system,error,critical login failure for user admin from somewhere via ssh').parser).toBe('syslog');
    expect(parse('<58>Nov 24 09:12:01 gw system,info,account user admin logged in from 10.0.0.1').parser).toBe('syslog');
  });

  it('RouterOS dst-nat: the destination as addressed and the server it was forwarded to; both translations at once', () => {
    const [fwd, chain, both] = lines('mikrotik-dstnat.log').map(parse);
    expect(fwd).toMatchObject({ src_ip: '203.0.113.9', src_port: 51522, dst_ip: '198.51.100.2', dst_port: 8080, post_nat_dst_ip: '10.36.1.20', post_nat_dst_port: 80, nat_ip: null, mac: '00:0c:42:11:22:33', proto: 6, action: 'forward' });
    expect(chain).toMatchObject({ dst_ip: '198.51.100.2', dst_port: 8080, post_nat_dst_ip: null, action: 'web-in dstnat' });
    expect(both).toMatchObject({ src_ip: '203.0.113.50', nat_ip: '100.64.0.9', nat_port: 40000, dst_ip: '198.51.100.2', dst_port: 1194, post_nat_dst_ip: '10.36.1.30', post_nat_dst_port: 1194, proto: 17 });
    // IPv6 in brackets is read; a NAT part cut short leaves the packet's own addresses.
    const v6 = parse('<13>Jan  2 03:04:05 gw firewall,info forward: in:a out:b, proto TCP, [2001:db8::1]:5->[2001:db8::9]:80, NAT [2001:db8::1]:5->([2001:db8::2]:80->[2001:db8::9]:80), len 60');
    expect(v6).toMatchObject({ dst_ip: '2001:db8::2', post_nat_dst_ip: '2001:db8::9', post_nat_dst_port: 80 });
    expect(parse('<13>Jan  2 03:04:05 gw firewall,info forward: in:a out:b, proto TCP, 1.1.1.1:5->10.0.0.9:80, NAT 1.1.1.1:5->(2.2.2.2:80, len 60')).toMatchObject({ dst_ip: '10.0.0.9', post_nat_dst_ip: null });
  });

  it('FreeRADIUS: a request from an unknown client names the client, its port and the listener', () => {
    const [bare, auth, acct] = lines('freeradius-unknown.log').map(parse);
    expect(bare).toMatchObject({ parser: 'radius', action: 'unknown client (auth)', src_ip: '172.19.0.1', src_port: 51765, dst_ip: null, dst_port: 1812, proto: 17, user: null });
    expect(auth).toMatchObject({ src_ip: '10.36.1.1', src_port: 49152, app: 'radiusd' });
    expect(acct).toMatchObject({ action: 'unknown client (acct)', dst_ip: '10.36.0.5', dst_port: 1813, src_port: 40123 });
  });

  it('Cisco ASA 302013/302015: the mapped addresses are the NAT translation, each way; the identity-firewall user', () => {
    const all = lines('cisco-asa-302013.log').map(parse);
    // Inbound to a DMZ server published at 123.123.123.10:22.
    expect(all[0]).toMatchObject({ src_ip: '150.150.150.150', src_port: 57346, dst_ip: '123.123.123.10', dst_port: 22, post_nat_dst_ip: '172.16.16.16', post_nat_dst_port: 22, nat_ip: null });
    // Outbound from the DMZ server: its source leaves as 123.123.123.10.
    expect(all[1]).toMatchObject({ src_ip: '172.16.16.16', src_port: 51624, nat_ip: '123.123.123.10', nat_port: 51624, dst_ip: '150.150.150.150', dst_port: 22, post_nat_dst_ip: null });
    expect(all[2]).toMatchObject({ src_ip: '10.36.1.20', src_port: 51515, nat_ip: '203.0.113.5', nat_port: 51515, dst_ip: '93.184.216.34', dst_port: 443, proto: 6, host: 'asa-office' });
    expect(all[3]).toMatchObject({ src_ip: '10.36.1.20', nat_ip: '203.0.113.5', nat_port: 53000, dst_port: 53, proto: 17, action: '302015 Built outbound' });
    expect(all[4]).toMatchObject({ src_ip: '198.51.100.7', dst_ip: '203.0.113.5', dst_port: 443, post_nat_dst_ip: '10.36.1.80', post_nat_dst_port: 443 });
    expect(all[5]).toMatchObject({ src_ip: '10.36.1.21', nat_port: 50100, user: 'LOCAL\\somchai' });
  });

  it('strongSwan: the peer and its identity, the virtual IP it was given and its release; a session for who', () => {
    const all = lines('strongswan.log').map(parse);
    expect(all[0]).toMatchObject({ user: 'CN=magrassee.internal.micahrl.com', action: 'authentication with ECDSA-256 signature successful', app: 'charon' });
    expect(all[2]).toMatchObject({ action: 'IKE_SA ikev2-pubkey[4] established', src_ip: '136.62.77.151', dst_ip: '172.16.254.113', user: 'CN=magrassee.internal.micahrl.com' });
    expect(all[3]).toMatchObject({ action: 'assigning virtual IP', src_ip: '10.19.48.106', user: 'CN=magrassee.internal.micahrl.com' });
    expect(all[4]).toMatchObject({ action: 'IKE_SA ikev2-pubkey[4] deleting', src_ip: '136.62.77.151' });
    expect(all[5]).toMatchObject({ action: 'DHCP RELEASE', src_ip: '10.19.48.106', dst_ip: '10.19.48.1', user: null });
    expect(all[6]).toMatchObject({ action: 'authentication with EAP successful', user: 'somchai@school.example' });
    // Sessions: from the assignment to the release (DHCP plugin) or the lease going offline (address pool).
    const [dhcp] = sessions(all, '10.19.48.106');
    expect(dhcp).toMatchObject({ user: 'CN=magrassee.internal.micahrl.com', source: 'strongswan', from: all[3]!.dev_ms, to: all[5]!.dev_ms, events: 2 });
    const [pool] = sessions(all, '10.10.10.2');
    expect(pool).toMatchObject({ user: 'somchai@school.example', from: all[8]!.dev_ms, to: all[9]!.dev_ms });
    // The address given to another peer ends the first one's session then, though no release was logged.
    const next = parse("Nov 24 12:00:00 vpn-office charon: 04[IKE] assigning virtual IP 10.10.10.2 to peer 'malee@school.example'");
    const firstOnly = all.slice(0, 9);
    const both = sessions([...firstOnly, next], '10.10.10.2');
    expect(both.map((b) => [b.user, b.to])).toEqual([['somchai@school.example', next.dev_ms], ['malee@school.example', null]]);
  });

  it('RFC 5424 headers: structured data kept apart, the message after it', () => {
    const m = parseSyslog(lines('rfc5424.log')[0]!, { recvMs: RECV, utcOffsetMinutes: 420 });
    expect(m).toMatchObject({ pri: 134, host: 'opnsense', app: 'filterlog', pid: '69805', sd: '[meta sequenceId="2633353"]', time: Date.parse('2022-09-06T18:37:34+02:00') });
    expect(m.msg.startsWith('10,,,02f4bab031b57d1e30553ce08e0ec131,re0,')).toBe(true);
  });

  it('ISO times in every spelling devices use come out as Date.parse reads them; a date that does not exist is no time', () => {
    const o = { recvMs: RECV, utcOffsetMinutes: 420 };
    const at = (stamp: string) => parseSyslog(`<13>1 ${stamp} host app - - - text`, o).time;
    const bare = (stamp: string) => parseSyslog(`<13>${stamp} host app: text\r\n`, o).time;
    expect(at('2026-06-03T09:41:05Z')).toBe(Date.parse('2026-06-03T09:41:05Z'));
    expect(at('2026-06-03T09:41:05.123456+07:00')).toBe(Date.parse('2026-06-03T09:41:05.123+07:00'));
    expect(at('2026-06-03T09:41:05.5-03:30')).toBe(Date.parse('2026-06-03T09:41:05.500-03:30'));
    expect(bare('2026-06-03T09:41:05+0700')).toBe(Date.parse('2026-06-03T09:41:05+07:00'));
    // No zone: the devices' own offset (Asia/Bangkok).
    expect(bare('2026-06-03 09:41:05')).toBe(Date.parse('2026-06-03T09:41:05+07:00'));
    expect(at('2024-02-29T00:00:00Z')).toBe(Date.parse('2024-02-29T00:00:00Z'));
    for (const nonsense of ['2026-02-29T00:00:00Z', '2026-13-01T00:00:00Z', '2026-04-31T00:00:00Z', '2026-06-03T24:00:00Z', '2026-06-03T09:60:00Z', '2026-06-03T09:41:05+25:00']) expect(at(nonsense), nonsense).toBeNull();
  });
});

// Each file of test/fixtures/hostile/syslog is one 64 KB message built to
// make one pattern of parsers.ts or syslog.ts backtrack as much as it can
// (README.md there). Before the linear rewrite they took from 0.2 s to over a
// minute each; the bound is the median of several runs after a warm-up run
// (a loaded machine's pauses land in one run, not in the median).
describe('hostile messages parse in linear time', () => {
  const hostile = join(PROJECT, 'test', 'fixtures', 'hostile', 'syslog');
  const files = readdirSync(hostile).filter((f) => f.endsWith('.txt'));

  it('there is an input for every pattern family', () => {
    expect(files.length).toBeGreaterThanOrEqual(30);
    for (const family of ['header-', 'ros-chain', 'ros-dhcp', 'ros-nat-dst', 'ros-login', 'radius-acct', 'radius-unknown', 'kea-', 'web-access', 'cisco-asa-', 'cisco-asa-mapped', 'strongswan-', 'postfix-']) expect(files.some((f) => f.startsWith(family)), family).toBe(true);
  });

  it.each(files)('%s: median under 5 ms, raw kept whole, flagged as parsed in part', (f) => {
    const line = readFileSync(join(hostile, f), 'utf8');
    expect(line.length).toBe(65_536);
    parse(line);
    const times: number[] = [];
    let r = parse(line);
    for (let k = 0; k < 7; k++) {
      const t0 = performance.now();
      r = parse(line);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    expect(times[3], `median of ${times.map((t) => t.toFixed(2)).join(', ')} ms`).toBeLessThan(5);
    expect(r.raw).toBe(line.replace(/[\r\n]+$/, ''));
    expect(r.flags! & FLAG_PARSE_LIMIT).toBe(FLAG_PARSE_LIMIT);
  });
});

describe('the parse limit and the flags', () => {
  it(`only the first ${PARSE_LIMIT} characters are parsed; raw keeps everything, and the record says so`, () => {
    const head = lines('mikrotik-firewall.log')[0]!;
    const long = `${head} ${'ค'.repeat(70_000)}`;
    const r = parse(long);
    expect(r).toMatchObject({ parser: 'mikrotik-firewall', src_ip: '186.26.78.68', dst_port: 53, flags: FLAG_PARSE_LIMIT });
    expect(r.raw).toBe(long);
    // A fact past the limit is not read.
    const late = parse(`<13>Jan  2 03:04:05 h dhcpd: ${'x'.repeat(PARSE_LIMIT)} DHCPACK on 10.0.0.1 to 00:11:22:33:44:55`);
    expect(late).toMatchObject({ parser: 'syslog', app: 'dhcpd', flags: FLAG_PARSE_LIMIT });
    // A cut between the halves of a surrogate pair leaves no half behind in what was parsed.
    const emoji = parse(`<13>Jan  2 03:04:05 h app: ${'a'.repeat(PARSE_LIMIT - 27)}😀😀`);
    expect(emoji.raw!.endsWith('😀😀')).toBe(true);
  });

  it('a line within the limit has no flags; the framer\'s flags are kept and added to', () => {
    const l = lines('isc-dhcpd.log')[3]!;
    expect(parse(l).flags).toBeNull();
    const ctx = { exporter: '127.0.0.1', recvMs: RECV, utcOffsetMinutes: 420 };
    expect(parseLogLine(l, ctx, FLAG_CUT)).toMatchObject({ parser: 'isc-dhcp', flags: FLAG_CUT });
    expect(parseLogLine(`${l}${' '.repeat(PARSE_LIMIT)}x`, ctx, FLAG_CUT)).toMatchObject({ parser: 'isc-dhcp', flags: FLAG_CUT | FLAG_PARSE_LIMIT });
  });

  it('the hand-written tokenisers take what the expressions they replace took', () => {
    // RouterOS: a label, a chain, an unknown interface; a lease with a client name; a hotspot event with detail.
    expect(parse('<13>Jan  2 03:04:05 gw firewall,info [accept lan] forward: in:bridge out:ether1, connection-state:new proto TCP (SYN), 10.0.0.2:5000->1.1.1.1:443, NAT (10.0.0.2:5000->100.64.0.1:6000)->1.1.1.1:443, len 60')).toMatchObject({ action: 'accept lan forward', nat_ip: '100.64.0.1', nat_port: 6000, bytes: 60 });
    expect(parse('<13>Jan  2 03:04:05 gw firewall,info forward: in:(unknown 0) out:ether1, proto UDP, 10.0.0.2:5000->1.1.1.1:53, len 60').parser).toBe('syslog');
    expect(parse('<13>Jan  2 03:04:05 gw dhcp,info dhcp1 assigned 10.0.0.9 for 00:11:22:33:44:55 laptop-9')).toMatchObject({ parser: 'mikrotik-dhcp', action: 'assigned', src_ip: '10.0.0.9', client: 'laptop-9', app: 'dhcp1' });
    expect(parse('<13>Jan  2 03:04:05 gw hotspot,account,info u1 (10.0.0.3): login failed: invalid password')).toMatchObject({ user: 'u1', src_ip: '10.0.0.3', action: 'login failed: invalid password' });
    expect(parse('<13>Jan  2 03:04:05 gw hotspot,info u2 (10.0.0.4): trying to log in by http-chap')).toMatchObject({ user: 'u2', action: 'trying to log in by http-chap' });
    // Kea: the lease time; FreeRADIUS: the reason in brackets, a station without "cli"; accounting pairs with quotes and escapes.
    const kea = parse('<13>Jan  2 03:04:05 h kea-dhcp4: INFO DHCP4_LEASE_ALLOC [hwtype=1 00:11:22:33:44:55], cid=[no info], tid=0x1: lease 10.0.0.7 has been allocated for 3600 seconds');
    expect(kea).toMatchObject({ parser: 'kea-dhcp', src_ip: '10.0.0.7', mac: '00:11:22:33:44:55' });
    expect(kea.end_ms! - kea.start_ms!).toBe(3_600_000);
    expect(parse('<13>Jan  2 03:04:05 h radiusd[1]: Login incorrect (Failed retrieving values required to evaluate condition): [bob] (from client ap1 port 0 cli 10.0.0.8)')).toMatchObject({ action: 'Login incorrect', user: 'bob', client: 'ap1', src_ip: '10.0.0.8' });
    expect(parse('<13>Jan  2 03:04:05 h radiusd[1]: Login OK: [carol] (from client ap2 port 7)')).toMatchObject({ user: 'carol', client: 'ap2' });
    expect(parse('<13>Jan  2 03:04:05 h radiusd[1]: Acct-Status-Type = Stop, User-Name = "d\\"q", 9x = 1, Framed-IP-Address = 10.0.0.9, Acct-Input-Octets = 10, Acct-Output-Gigawords = 1')).toMatchObject({ parser: 'radius-acct', action: 'Stop', user: 'd\\"q', src_ip: '10.0.0.9', bytes: 10 + 2 ** 32 });
    // Postfix: the client from "client=", the recipient; Cisco ASA: an IPv6 interface address.
    expect(parse('<13>Jan  2 03:04:05 h postfix/smtpd[1]: 0123456789AB: client=x.example[10.0.0.5], sasl_username=eve')).toMatchObject({ src_ip: '10.0.0.5', user: 'eve' });
    expect(parse('<13>Jan  2 03:04:05 h postfix/smtp[1]: 0123456789AB: to=<a@b.example>, relay=none, status=bounced (x)')).toMatchObject({ action: 'bounced to a@b.example', url: 'mailto:a@b.example' });
    expect(parse('<13>Jan  2 03:04:05 h CiscoASA[1]: %ASA-6-302015: Built outbound UDP connection 9 for outside:2001:db8::1/53 (2001:db8::1/53) to inside:10.0.0.6/5353 (10.0.0.6/5353)')).toMatchObject({ src_ip: '10.0.0.6', src_port: 5353, dst_ip: '2001:db8::1', dst_port: 53, proto: 17 });
    // A tag with its pid ends the host tokens however many brackets come before it.
    expect(parseSyslog('<13>Jan  2 03:04:05 [[x]dhcpd[1] rest', { recvMs: RECV, utcOffsetMinutes: 420 }).host).toBeNull();
  });
});
