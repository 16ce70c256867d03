// The simulated area: the example area's schools (config/examples/) moved
// onto loopback, each SNMP device on its own 127.x address answered by
// snmpsimd from a recording of a real device of its kind, with interface
// counters and sysUpTime that move (snmpsim's numeric variation) so rates are
// real. A few devices are deliberately not served: they time out. The demo,
// the integration tests and the benchmark all use this one area.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { writeRecording, startSnmpsim, type Snmpsim } from './snmpsim.ts';
import { namespaceHost, type NamespaceHost } from './netns.ts';

export const PROJECT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES = join(PROJECT, 'test', 'fixtures');

export const IF_HC_IN = '1.3.6.1.2.1.31.1.1.1.6';
export const IF_HC_OUT = '1.3.6.1.2.1.31.1.1.1.10';

/** Octets per second the simulated router counts on interface `index`, in and out. */
export function simRate(index: number): { in: number; out: number } {
  if (index === 3) return { in: 2_000_000, out: 500_000 }; // WAN: 16 Mbit/s down, 4 up
  return { in: ((index * 37) % 100) * 1000 + 1000, out: ((index * 53) % 100) * 500 + 500 };
}

/** A recording with moving counters: ifHC octets and packets at simRate(), sysUpTime ticking from the agent's start. */
export function routerRecording(): string {
  const lines = readFileSync(join(FIXTURES, 'snmprec', 'routeros.snmprec'), 'utf8').split('\n');
  return lines
    .map((l) => {
      const [oid, type, value] = l.split('|');
      if (!oid || type === undefined) return l;
      if (oid === '1.3.6.1.2.1.1.3.0') return `${oid}|67:numeric|rate=100,initial=${value}`;
      const m = /^1\.3\.6\.1\.2\.1\.31\.1\.1\.1\.(6|7|10|11)\.(\d+)$/.exec(oid);
      if (!m || type !== '70') return l;
      const r = simRate(Number(m[2]));
      const octets = m[1] === '6' ? r.in : m[1] === '10' ? r.out : undefined;
      const rate = octets ?? Math.max(1, Math.round((m[1] === '7' ? r.in : r.out) / 600));
      return `${oid}|70:numeric|rate=${rate},initial=${value}`;
    })
    .join('\n');
}

function uptimeMoving(file: string): string {
  return readFileSync(join(FIXTURES, 'snmprec', file), 'utf8')
    .split('\n')
    .map((l) => (l.startsWith('1.3.6.1.2.1.1.3.0|67|') ? `1.3.6.1.2.1.1.3.0|67:numeric|rate=100,initial=${l.split('|')[2]}` : l))
    .join('\n');
}

/** Recording name (= SNMP community in the simulation) → recording text. */
export function recordings(): Record<string, string> {
  return {
    router: routerRecording(),
    ird: uptimeMoving('ird.snmprec'),
    linux: uptimeMoving('linux-full-walk.snmprec'),
    'linux-lsi': uptimeMoving('linux_lsi.snmprec'),
    windows: uptimeMoving('winxp-full-walk.snmprec'),
    jetstream: uptimeMoving('jetstream.snmprec'),
  };
}

export interface SimDevice {
  id: string;
  address: string;
  recording?: string;
  served: boolean;
}

export interface SimArea {
  dir: string;
  dataDir: string;
  settingsPath: string;
  snmpPort: number;
  endpoints: string[];
  devices: SimDevice[];
}

export interface SimOptions {
  dir: string;
  influxUrl: string;
  database?: string;
  snmpPort?: number;
  /** Device ids left unserved, so they time out. */
  silent?: string[];
  /** Take only the first N schools. */
  schools?: number;
  httpListen?: string;
  interval?: string;
  extraSettings?: Record<string, unknown>;
  /** Second octet of every address (127.N.school.host; the office at 127.N.0.x): the area takes 127.N.0.0/16 and nothing else. Default 20. */
  octet?: number;
  /** Devices watched over SNMP only (no ICMP): pausing their agent takes them down. */
  snmpOnly?: string[];
  /** Devices moved to an address of their own (a network namespace the caller made, sim/area.ts unpluggedHost), watched by ICMP only. */
  moved?: Record<string, string>;
}

export const DEFAULT_SILENT = ['1036090119-router', '1036090120-dltv-2'];

interface RawDevice {
  id: string;
  kind: string;
  address: string;
  profile?: string;
  snmp?: string;
  parent?: string;
  [k: string]: unknown;
}
interface RawSchool {
  code: string;
  devices: RawDevice[];
  [k: string]: unknown;
}

function recordingFor(d: RawDevice): string | undefined {
  if (d.profile === 'icmp-only') return undefined;
  if (d.kind === 'router' || d.kind === 'uplink') return 'router';
  if (d.kind === 'dltv-receiver') return 'ird';
  if (d.id === 'office-files') return 'windows';
  if (d.id === 'office-web') return 'linux';
  if (d.kind === 'server') return 'linux-lsi';
  return 'router';
}

export function buildSimArea(o: SimOptions): SimArea {
  const port = o.snmpPort ?? 1161;
  const silent = new Set(o.silent ?? DEFAULT_SILENT);
  const examples = join(PROJECT, 'config', 'examples');
  const office = (parse(readFileSync(join(examples, 'office.yaml'), 'utf8')) as { office: RawSchool }).office;
  let schools = (parse(readFileSync(join(examples, 'schools.yaml'), 'utf8')) as { schools: RawSchool[] }).schools;
  if (o.schools !== undefined) schools = schools.slice(0, o.schools);

  const devices: SimDevice[] = [];
  const place = (d: RawDevice, address: string) => {
    const elsewhere = o.moved?.[d.id];
    if (elsewhere !== undefined) {
      // Off the loopback block: a host of its own, answered (or not) by the kernel of its namespace.
      d.address = elsewhere;
      d.profile = 'icmp-only';
      delete d.snmp;
      delete d.port;
      devices.push({ id: d.id, address: elsewhere, served: false });
      return;
    }
    d.address = address;
    d.port = port;
    if (o.snmpOnly?.includes(d.id)) d.icmp = false;
    const rec = recordingFor(d);
    if (rec) d.snmp = rec;
    else delete d.snmp;
    // The simulated school routers are RouterOS recordings whose uplink is the port named WAN:
    // named as a real inventory would, so the uplink check and the saturation views have data.
    if (rec === 'router' && d.kind === 'router' && d.uplink_if === undefined) d.uplink_if = 'WAN';
    devices.push({ id: d.id, address, served: rec !== undefined && !silent.has(d.id), ...(rec ? { recording: rec } : {}) });
  };
  const octet = o.octet ?? 20;
  office.devices.forEach((d, k) => place(d, `127.${octet}.0.${k + 1}`)); // schools start at 127.N.1
  schools.forEach((s, i) => {
    const net = `127.${octet}.${i + 1}`;
    let receiver = 11;
    for (const d of s.devices) {
      if (d.kind === 'router') place(d, `${net}.1`);
      else if (d.kind === 'server') place(d, `${net}.2`);
      else place(d, `${net}.${receiver++}`);
    }
  });

  mkdirSync(o.dir, { recursive: true });
  const dataDir = join(o.dir, 'recordings');
  for (const [name, text] of Object.entries(recordings())) writeRecording(dataDir, name, text);
  writeFileSync(join(o.dir, 'office.yaml'), '# Simulated: config/examples/office.yaml on loopback.\n' + stringify({ office }, { lineWidth: 0 }));
  writeFileSync(join(o.dir, 'schools.yaml'), '# Simulated: config/examples/schools.yaml on loopback.\n' + stringify({ schools }, { lineWidth: 0 }));
  const credentials = Object.fromEntries(Object.keys(recordings()).map((name) => [name, { version: '2c', community: name }]));
  const settings = {
    area: { code: 'sim', name_th: 'เขตพื้นที่จำลอง (loopback)', name_en: 'Simulated area on loopback' },
    inventory: ['office.yaml', 'schools.yaml'],
    instance: 'sim',
    influx: { url: o.influxUrl, database: o.database ?? 'klaiwatch', flush_interval: '1s' },
    spool: { dir: join(o.dir, 'spool') },
    alerts: { state_db: join(o.dir, 'state.sqlite') },
    polling: { interval: o.interval ?? '30s', timeout: '1s', retries: 1 },
    snmp: { credentials },
    icmp: { count: 3, period: '200ms', timeout: '500ms' },
    http: { listen: o.httpListen ?? '127.0.0.1:9273' },
    ...o.extraSettings,
  };
  const settingsPath = join(o.dir, 'klaiwatch.yaml');
  writeFileSync(settingsPath, '# Simulated area settings, written by sim/area.ts.\n' + stringify(settings, { lineWidth: 0 }));
  const endpoints = devices.filter((d) => d.served).map((d) => `${d.address}:${port}`);
  return { dir: o.dir, dataDir, settingsPath, snmpPort: port, endpoints, devices };
}

/** One simulated router with an agent of its own (its own process), so that it alone can be paused. */
export function startRouterAgent(dir: string, endpoint: string): Promise<Snmpsim> {
  writeRecording(join(dir, 'recordings'), 'router', recordings().router!);
  return startSnmpsim({ dir, dataDir: join(dir, 'recordings'), endpoints: [endpoint], probeCommunity: 'router' });
}

/**
 * A host that is really down: sim/netns.ts's namespace host whose far end
 * starts unplugged, so an echo to 10.254.N.2 gets no answer at all. Needs
 * root; plug() brings the link up, remove() deletes the namespace and the pair.
 */
export function unpluggedHost(n: number): NamespaceHost {
  return namespaceHost(n, { ns: 'kwdemo', link: 'kwd' }, false, 'a device that is really down needs a network namespace (ip netns add): run as root');
}
