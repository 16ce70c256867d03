// The six dashboards, as code. Every query is an InfluxQL built from the
// measurement schema's names; `klaiwatch dashboards build` writes them out
// and test/dashboards runs every panel's query against a real InfluxDB.
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as geomap from '@grafana/grafana-foundation-sdk/geomap';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import { DATASOURCE, InfluxQL, from, field as fd, tag, matches, equals } from './influxql.ts';
import type { FieldName } from '../config/measurements.ts';
import { OUTAGE_INFLUXQL } from '../stores/definitions.ts';
import { uplinkCondition, uplinkUseQuery, uplinksOf, UPLINK_BUSY_PCT } from '../stores/uplink.ts';
import { DEVICE_KINDS, type DeviceKind } from '../config/schema.ts';
import { KIND_TH } from '../config/thai.ts';
import {
  availabilityThresholds,
  checkMapping,
  deviceLink,
  deviceStateMapping,
  deviceUid,
  deviceVariable,
  kindMapping,
  detailMapping,
  NO_AREA,
  rpVariable,
  schoolLink,
  schoolStateMapping,
  schoolVariable,
  SCHOOL_UID,
  statPanel,
  stateTextMapping,
  tablePanel,
  thresholds,
  timeseriesPanel,
  type DashboardArea,
} from './panels.ts';

const TAGS = ['klaiwatch'];

function base(uid: string, title: string, description: string): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(TAGS)
    .timezone('Asia/Bangkok')
    .refresh('1m')
    .time({ from: 'now-6h', to: 'now' })
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .readonly()
    .link(new dashboard.DashboardLinkBuilder('klaiwatch').type(dashboard.DashboardLinkType.Dashboards).tags(TAGS).asDropdown(true).includeVars(true).keepTime(true));
}

function stateTimeline(title: string, query: InfluxQL, mappings: dashboard.ValueMapping[], opts: { span?: number; height?: number } = {}): statetimeline.PanelBuilder {
  return new statetimeline.PanelBuilder()
    .title(title)
    .datasource(DATASOURCE)
    .withTarget(query.refId('A'))
    .height(opts.height ?? 8)
    .span(opts.span ?? 24)
    .mappings(mappings)
    .showValue(common.VisibilityMode.Never)
    .mergeValues(true)
    .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.Thresholds))
    .thresholds(thresholds([[null, 'green']]));
}

// -------------------------------------------------------------- area overview

type AreaField = FieldName<'area_state'>;

/**
 * The area's figures from `area_state`, whose points each collector
 * (instance, one per shard) writes for its own share: the last point of
 * each instance, summed. With `interval`, per time bucket (one instance's
 * last in each, then the sum); without, the latest. One collector: its own.
 */
export function areaTotals(fields: readonly AreaField[], opts: { interval?: string; as?: readonly string[] } = {}): string {
  const inner = fields.map((f) => `last(${fd('area_state', f)}) AS ${fd('area_state', f)}`).join(', ');
  const outer = fields.map((f, i) => `sum(${fd('area_state', f)}) AS "${(opts.as?.[i] ?? f).replace(/"/g, '')}"`).join(', ');
  const by = opts.interval ? `time(${opts.interval}), ${tag('area_state', 'instance')}` : tag('area_state', 'instance');
  return `SELECT ${outer} FROM (SELECT ${inner} FROM ${from('area_state')} WHERE $timeFilter GROUP BY ${by}) WHERE $timeFilter${opts.interval ? ` GROUP BY time(${opts.interval}) fill(null)` : ''}`;
}

/** The checks failing now (`check_state`, last point of each check seen in the last three polling intervals): school, device, check, since, value. */
export function openChecksQuery(area: DashboardArea, where = ''): string {
  const windowMin = Math.max(10, Math.ceil((3 * area.maxIntervalMs) / 60_000));
  const by = `${tag('check_state', 'school')}, ${tag('check_state', 'school_name')}, ${tag('check_state', 'device')}, ${tag('check_state', 'kind')}, ${tag('check_state', 'check')}`;
  return (
    `SELECT "since", "value", "detail", "failing", "kind" AS "kind_code" FROM (SELECT last(${fd('check_state', 'failing')}) AS "failing", last(${fd('check_state', 'since')}) AS "since", last(${fd('check_state', 'value')}) AS "value", last(${fd('check_state', 'detail')}) AS "detail" ` +
    `FROM ${from('check_state')} WHERE ${where ? `${where} AND ` : ''}time > now() - ${windowMin}m GROUP BY ${by}) WHERE "failing" = 1 GROUP BY ${by}`
  );
}

function openChecksTable(area: DashboardArea, where: string, linkSchool: 'row' | 'variable', span: number): ReturnType<typeof tablePanel> {
  return tablePanel('ปัญหาที่ยังไม่แก้ไขตอนนี้ (อุปกรณ์ยังใช้งานได้)', new InfluxQL(openChecksQuery(area, where)), {
    span,
    height: 10,
    sortBy: { displayName: 'ตั้งแต่', desc: false },
    description:
      'Failed checks open now (disk over its limit, SNMP agent silent while the device answers ping, uplink port down, receiver not locked): the ones the "incidents open" figure counts beside the devices down. ค่าที่วัดได้: the value the check judged (a disk\'s used %), empty for the SNMP agent.',
    columns: {
      school: { hidden: true },
      school_name: { links: [schoolLink(linkSchool)] },
      device: { links: [deviceLink(linkSchool)] },
      kind: { mappings: kindMapping },
      kind_code: { hidden: true },
      check: { mappings: checkMapping },
      detail: { mappings: detailMapping },
      since: { unit: 'dateTimeAsLocal' },
      value: { decimals: 1 },
      failing: { hidden: true },
    },
  });
}

export function areaDashboard(area: DashboardArea = NO_AREA): dashboard.DashboardBuilder {
  const count = (f: 'schools_up' | 'schools_degraded' | 'schools_down' | 'schools_unreachable' | 'incidents_open' | 'devices_down') => new InfluxQL(areaTotals([f]));
  const map = new geomap.PanelBuilder()
    .title('แผนที่โรงเรียน (สีตามสถานะล่าสุด)')
    .description('ตำแหน่งจากทะเบียนโรงเรียน (inventory: location). Schools without a location are not drawn. Click a school for its dashboard.')
    .datasource(DATASOURCE)
    .withTarget(
      new InfluxQL(
        `SELECT last(${fd('school_state', 'state_code')}) AS "state_code", last(${fd('school_state', 'lat')}) AS "lat", last(${fd('school_state', 'lon')}) AS "lon" FROM ${from('school_state')} WHERE $timeFilter GROUP BY ${tag('school_state', 'school')}, ${tag('school_state', 'school_name')}`,
      )
        .table()
        .refId('A'),
    )
    .height(14)
    .span(12)
    .mappings(schoolStateMapping)
    .thresholds(thresholds([[null, 'text'], [1, 'green'], [2, 'yellow'], [3, 'red'], [4, 'orange'], [5, 'blue']]))
    .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.Thresholds))
    .overrideByName('school_name', [{ id: 'displayName', value: 'โรงเรียน' }, { id: 'links', value: [schoolLink()] }])
    .overrideByName('state_code', [{ id: 'displayName', value: 'สถานะ' }, { id: 'links', value: [schoolLink()] }])
    .overrideByName('school', [{ id: 'displayName', value: 'รหัสโรงเรียน' }])
    .view(new geomap.MapViewConfigBuilder().id('fit').allLayers(true).zoom(9))
    .layers([
      new common.MapLayerOptionsBuilder()
        .type('markers')
        .name('โรงเรียน')
        .location(new common.FrameGeometrySourceBuilder().mode(common.FrameGeometrySourceMode.Coords).latitude('lat').longitude('lon'))
        .config({ showLegend: true, style: { color: { field: 'state_code', fixed: 'green' }, size: { fixed: 8 }, symbol: { fixed: 'img/icons/marker/circle.svg', mode: 'fixed' } } })
        .tooltip(true),
    ]);
  const worst = (f: 'loss_pct' | 'rtt_avg_ms', title: string, unit: string) =>
    tablePanel(
      title,
      new InfluxQL(
        `SELECT mean(${fd('icmp', 'loss_pct')}) AS "loss_pct", mean(${fd('icmp', 'rtt_avg_ms')}) AS "rtt_avg_ms" FROM ${from('icmp')} WHERE ${equals('icmp', 'kind', 'router')} AND $timeFilter GROUP BY ${tag('icmp', 'school')}, ${tag('icmp', 'school_name')}`,
      ),
      {
        span: 12,
        height: 10,
        sortBy: { displayName: f === 'loss_pct' ? 'สูญหาย (%)' : 'ความหน่วง (ms)', desc: true },
        description: `เราเตอร์ของแต่ละโรงเรียน เรียงจากมากไปน้อย (${unit})`,
        columns: { school: { hidden: true }, school_name: { links: [schoolLink()] }, loss_pct: { th: 'สูญหาย (%)', unit: 'percent', decimals: 2 }, rtt_avg_ms: { th: 'ความหน่วง (ms)', unit: 'ms', decimals: 1 } },
      },
    );
  return base('klaiwatch-area', 'klaiwatch · ภาพรวมเขตพื้นที่ (Area overview)', 'Schools up, down and unreachable now; the map; outages and failed checks open now; the schools with the worst links.')
    .withRow(new dashboard.RowBuilder('สถานะตอนนี้ (now)'))
    .withPanel(statPanel('โรงเรียนปกติ', count('schools_up'), { thresholds: thresholds([[null, 'green']]) }))
    .withPanel(statPanel('บางอุปกรณ์ขัดข้อง', count('schools_degraded'), { thresholds: thresholds([[null, 'green'], [1, 'yellow']]) }))
    .withPanel(statPanel('โรงเรียนขัดข้อง (เราเตอร์)', count('schools_down'), { thresholds: thresholds([[null, 'green'], [1, 'red']]) }))
    .withPanel(statPanel('ติดต่อไม่ได้ (ต้นทางขัดข้อง)', count('schools_unreachable'), { thresholds: thresholds([[null, 'green'], [1, 'orange']]) }))
    .withPanel(statPanel('เหตุขัดข้องและปัญหาที่ยังเปิดอยู่', count('incidents_open'), { thresholds: thresholds([[null, 'green'], [1, 'red']]) }).description('Outages and failed checks open now: listed in the two tables below.'))
    .withPanel(statPanel('อุปกรณ์ขัดข้อง', count('devices_down'), { thresholds: thresholds([[null, 'green'], [1, 'red']]) }))
    .withPanel(map)
    .withPanel(
      tablePanel(
        'อุปกรณ์ที่ขัดข้องตอนนี้ (open outages)',
        new InfluxQL(
          `SELECT "state", "state_code", "kind" AS "kind_code" FROM (SELECT last(${fd('device_state', 'state')}) AS "state", last(${fd('device_state', 'state_code')}) AS "state_code" FROM ${from('device_state')} WHERE $timeFilter GROUP BY ${tag('device_state', 'school')}, ${tag('device_state', 'school_name')}, ${tag('device_state', 'device')}, ${tag('device_state', 'kind')}) WHERE "state_code" = 2 OR "state_code" = 3 GROUP BY "school", "school_name", "device", "kind"`,
        ),
        {
          span: 12,
          height: 14,
          description: 'สถานะล่าสุดของอุปกรณ์ที่ขัดข้องหรือติดต่อไม่ได้; the incidents themselves, with their causes, are in the state database and the report.',
          columns: { school: { hidden: true }, school_name: { links: [schoolLink()] }, device: { links: [deviceLink()] }, kind: { mappings: kindMapping }, kind_code: { hidden: true }, state: { mappings: stateTextMapping }, state_code: { hidden: true } },
        },
      ),
    )
    .withPanel(openChecksTable(area, '', 'row', 24))
    .withRow(new dashboard.RowBuilder('คุณภาพลิงก์ (link quality)'))
    .withPanel(worst('loss_pct', 'โรงเรียนที่สูญหายแพ็กเก็ตมากที่สุด (loss %)', '%'))
    .withPanel(worst('rtt_avg_ms', 'โรงเรียนที่หน่วงมากที่สุด (latency ms)', 'ms'))
    .withPanel(
      timeseriesPanel(
        'จำนวนอุปกรณ์ตามสถานะ',
        [
          new InfluxQL(areaTotals(['devices_up', 'devices_down', 'devices_unreachable', 'devices_unknown'], { interval: '$__interval', as: ['ปกติ', 'ขัดข้อง', 'ติดต่อไม่ได้', 'ไม่ทราบ'] })),
        ],
        { span: 24, min: 0 },
      ),
    );
}

// --------------------------------------------------------------------- school

/** The uplink condition for the dashboards: exactly the inventory's uplink interfaces, or nothing at all when none is named. */
function uplinksWhere(area: DashboardArea): string {
  return uplinkCondition(uplinksOf(area.devices)) ?? `"ifname" = '' AND "ifname" != ''`;
}

const UPLINK_HOW =
  `The uplink is the interface the inventory names as the router's uplink_if (set it for every school's router). Use = bits per second / the interface's speed (speed_bps), per point; p95 = 95th percentile of those points; hours above ${UPLINK_BUSY_PCT} % = the share of points with in or out above ${UPLINK_BUSY_PCT} %, times 24 h (a day's figure; today's so far).`;

export function schoolDashboard(area: DashboardArea = NO_AREA): dashboard.DashboardBuilder {
  const inSchool = (m: 'device_state' | 'icmp' | 'interface' | 'device' | 'check_state') => matches(m, 'school', 'school');
  const use = (rp?: string) => uplinkUseQuery(from('interface', rp), `${uplinksWhere(area)} AND ${inSchool('interface')}`, '$timeFilter', '"device", "ifname"');
  return base(SCHOOL_UID, 'klaiwatch · โรงเรียน (School)', "One school: its devices' states, failed checks open now, its uplink's use, its router's traffic, latency and loss.")
    .withVariable(schoolVariable(area))
    .withVariable(
      new dashboard.QueryVariableBuilder('ifname')
        .label('พอร์ตเราเตอร์')
        .datasource(DATASOURCE)
        .query(`SHOW TAG VALUES FROM "interface" WITH KEY = "ifname" WHERE "school" =~ /^$school$/ AND "kind" = 'router'`)
        .refresh(dashboard.VariableRefresh.OnDashboardLoad)
        .includeAll(true)
        .allValue('.*')
        .multi(true),
    )
    .withPanel(
      stateTimeline(
        'สถานะอุปกรณ์ของโรงเรียน',
        new InfluxQL(`SELECT last(${fd('device_state', 'state_code')}) FROM ${from('device_state')} WHERE ${inSchool('device_state')} AND $timeFilter GROUP BY time($__interval), ${tag('device_state', 'device')} fill(previous)`).alias('$tag_device'),
        deviceStateMapping,
      ),
    )
    .withPanel(
      tablePanel(
        'อุปกรณ์และสถานะล่าสุด',
        new InfluxQL(
          `SELECT "state", "availability_pct", "kind" AS "kind_code" FROM (SELECT last(${fd('device_state', 'state')}) AS "state", mean(${fd('device_state', 'up')}) * 100 AS "availability_pct" FROM ${from('device_state')} WHERE ${inSchool('device_state')} AND $timeFilter GROUP BY ${tag('device_state', 'device')}, ${tag('device_state', 'kind')}) GROUP BY "device", "kind"`,
        ),
        {
          span: 12,
          height: 10,
          description: 'สภาพพร้อมใช้งาน: ส่วนของเวลาในช่วงที่เลือกที่อุปกรณ์ใช้งานได้ (จากสถานะรายรอบ). Click a device for its dashboard.',
          columns: { device: { links: [deviceLink('variable')] }, kind: { mappings: kindMapping }, kind_code: { hidden: true }, state: { mappings: stateTextMapping }, availability_pct: { th: 'สภาพพร้อมใช้งาน (%)', unit: 'percent', decimals: 2 } },
        },
      ),
    )
    .withPanel(openChecksTable(area, inSchool('check_state'), 'variable', 12))
    .withRow(new dashboard.RowBuilder('การใช้ uplink (uplink saturation)'))
    .withPanel(
      timeseriesPanel(
        `การใช้ uplink (% ของความเร็วพอร์ต, เส้นเตือน ${UPLINK_BUSY_PCT} %)`,
        [new InfluxQL(`SELECT mean("in_pct") AS "เข้า", mean("out_pct") AS "ออก" FROM (${use()}) WHERE $timeFilter GROUP BY time($__interval), "ifname" fill(null)`).alias('$tag_ifname $col')],
        { unit: 'percent', min: 0, description: UPLINK_HOW },
      )
        .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Line))
        .thresholds(thresholds([[null, 'green'], [UPLINK_BUSY_PCT, 'red']])),
    )
    .withPanel(
      tablePanel(
        `uplink รายวัน: p95 และชั่วโมงที่เกิน ${UPLINK_BUSY_PCT} %`,
        new InfluxQL(`SELECT percentile("in_pct", 95) AS "in_p95", percentile("out_pct", 95) AS "out_p95", mean("busy") * 24 AS "busy_h" FROM (${use()}) WHERE $timeFilter GROUP BY time(1d) tz('Asia/Bangkok')`),
        {
          span: 12,
          keepTime: true,
          description: UPLINK_HOW,
          columns: { in_p95: { th: 'p95 ขาเข้า (%)', unit: 'percent', decimals: 1 }, out_p95: { th: 'p95 ขาออก (%)', unit: 'percent', decimals: 1 }, busy_h: { th: `ชั่วโมงที่เกิน ${UPLINK_BUSY_PCT} %`, unit: 'h', decimals: 1 } },
        },
      ),
    )
    .withRow(new dashboard.RowBuilder('ทราฟฟิกและคุณภาพลิงก์ (traffic, latency, loss)'))
    .withPanel(
      timeseriesPanel(
        'ทราฟฟิกของเราเตอร์ เข้า/ออก',
        [
          new InfluxQL(`SELECT mean(${fd('interface', 'in_bps')}) FROM ${from('interface')} WHERE ${inSchool('interface')} AND ${equals('interface', 'kind', 'router')} AND ${matches('interface', 'ifname', 'ifname')} AND $timeFilter GROUP BY time($__interval), ${tag('interface', 'ifname')} fill(null)`).alias('$tag_ifname เข้า'),
          new InfluxQL(`SELECT -mean(${fd('interface', 'out_bps')}) FROM ${from('interface')} WHERE ${inSchool('interface')} AND ${equals('interface', 'kind', 'router')} AND ${matches('interface', 'ifname', 'ifname')} AND $timeFilter GROUP BY time($__interval), ${tag('interface', 'ifname')} fill(null)`).alias('$tag_ifname ออก'),
        ],
        { unit: 'bps', span: 24, description: 'ขาเข้าอยู่ด้านบน ขาออกอยู่ด้านล่าง (ค่าลบ). Choose ports in the พอร์ตเราเตอร์ picker.' },
      ),
    )
    .withPanel(
      timeseriesPanel('ความหน่วง (RTT เฉลี่ย)', [new InfluxQL(`SELECT mean(${fd('icmp', 'rtt_avg_ms')}) FROM ${from('icmp')} WHERE ${inSchool('icmp')} AND $timeFilter GROUP BY time($__interval), ${tag('icmp', 'device')} fill(null)`).alias('$tag_device')], {
        unit: 'ms',
        min: 0,
      }),
    )
    .withPanel(
      timeseriesPanel('การสูญหายของแพ็กเก็ต', [new InfluxQL(`SELECT mean(${fd('icmp', 'loss_pct')}) FROM ${from('icmp')} WHERE ${inSchool('icmp')} AND $timeFilter GROUP BY time($__interval), ${tag('icmp', 'device')} fill(null)`).alias('$tag_device')], {
        unit: 'percent',
        min: 0,
        max: 100,
      }),
    );
}

// --------------------------------------------------------------------- device

/** Which rows a kind's device dashboard has: a row per measurement the kind's profiles fill; the ones only some devices fill start collapsed. */
const DEVICE_ROWS: Record<DeviceKind, { open: readonly DeviceRow[]; collapsed: readonly DeviceRow[] }> = {
  router: { open: ['interface', 'cpu'], collapsed: ['system', 'sensor'] },
  uplink: { open: ['interface', 'cpu'], collapsed: ['system', 'sensor'] },
  switch: { open: ['interface'], collapsed: ['cpu', 'system', 'sensor'] },
  'access-point': { open: ['interface'], collapsed: ['cpu', 'system'] },
  server: { open: ['cpu', 'storage'], collapsed: ['system', 'interface'] },
  'dltv-receiver': { open: ['receiver'], collapsed: ['interface'] },
  other: { open: ['interface'], collapsed: ['cpu', 'system', 'storage', 'sensor', 'receiver'] },
};
type DeviceRow = 'interface' | 'cpu' | 'system' | 'storage' | 'sensor' | 'receiver';

export function deviceDashboard(kind: DeviceKind, area: DashboardArea = NO_AREA): dashboard.DashboardBuilder {
  const dev = (m: 'interface' | 'system' | 'storage' | 'receiver' | 'icmp' | 'device' | 'device_state' | 'device_info' | 'sensor') => matches(m, 'device', 'device');
  const ts = (m: 'interface' | 'system' | 'storage' | 'receiver' | 'icmp' | 'device' | 'sensor', select: string, by = '') =>
    new InfluxQL(`SELECT ${select} FROM ${from(m)} WHERE ${dev(m)} AND $timeFilter GROUP BY time($__interval)${by ? `, ${by}` : ''} fill(null)`);
  const rows: Record<DeviceRow, { title: string; panels: () => cog.Builder<dashboard.Panel>[] }> = {
    interface: {
      title: 'อินเทอร์เฟซ (interfaces)',
      panels: () => [
        timeseriesPanel(
          'ทราฟฟิก เข้า/ออก',
          [ts('interface', `mean(${fd('interface', 'in_bps')})`, tag('interface', 'ifname')).alias('$tag_ifname เข้า'), ts('interface', `-mean(${fd('interface', 'out_bps')})`, tag('interface', 'ifname')).alias('$tag_ifname ออก')],
          { unit: 'bps' },
        ),
        timeseriesPanel(
          'ข้อผิดพลาดและการทิ้งแพ็กเก็ต',
          [ts('interface', `mean(${fd('interface', 'in_errors_ps')}) AS "ผิดพลาดขาเข้า (in_errors)", mean(${fd('interface', 'out_errors_ps')}) AS "ผิดพลาดขาออก (out_errors)", mean(${fd('interface', 'in_discards_ps')}) AS "ทิ้งขาเข้า (in_discards)", mean(${fd('interface', 'out_discards_ps')}) AS "ทิ้งขาออก (out_discards)"`, tag('interface', 'ifname')).alias('$tag_ifname $col')],
          { unit: 'pps', min: 0 },
        ),
      ],
    },
    cpu: {
      title: 'CPU',
      panels: () => [timeseriesPanel('CPU', [ts('system', `mean(${fd('system', 'cpu_pct')})`).alias('CPU')], { unit: 'percent', min: 0, max: 100, span: 24, legend: 'list' })],
    },
    system: {
      title: 'หน่วยความจำและอุณหภูมิ (memory, temperature)',
      panels: () => [
        // A server's memory is a storage row (hrStorageRam); a router's, a firewall's is here when its profile reads it.
        timeseriesPanel('หน่วยความจำ', [ts('system', `mean(${fd('system', 'mem_used_pct')})`).alias('memory')], { unit: 'percent', min: 0, max: 100, span: 12, legend: 'list' }),
        // A firewall's hottest sensor is its system temperature (each sensor: the sensor row).
        timeseriesPanel('อุณหภูมิ', [ts('system', `mean(${fd('system', 'temperature_c')})`).alias('temperature')], { unit: 'celsius', span: 12, legend: 'list' }),
      ],
    },
    storage: {
      title: 'พื้นที่จัดเก็บ (storage)',
      panels: () => [timeseriesPanel('พื้นที่จัดเก็บที่ใช้', [ts('storage', `mean(${fd('storage', 'used_pct')})`, tag('storage', 'storage')).alias('$tag_storage')], { unit: 'percent', min: 0, max: 100, span: 24 })],
    },
    sensor: {
      title: 'เซ็นเซอร์ (sensors)',
      panels: () => [timeseriesPanel('อุณหภูมิรายเซ็นเซอร์', [ts('sensor', `mean(${fd('sensor', 'temperature_c')})`, tag('sensor', 'sensor')).alias('$tag_sensor')], { unit: 'celsius', span: 24 })],
    },
    receiver: {
      title: 'สัญญาณดาวเทียม (receiver)',
      panels: () => [
        timeseriesPanel('ระดับสัญญาณ', [ts('receiver', `mean(${fd('receiver', 'signal_dbm')})`).alias('level dBm')], { unit: 'dBm', span: 8, legend: 'list' }),
        timeseriesPanel('C/N และ Eb/No', [ts('receiver', `mean(${fd('receiver', 'cn_db')}) AS "C/N", mean(${fd('receiver', 'ebno_db')}) AS "Eb/No"`).alias('$col')], { unit: 'dB', span: 8 }),
        timeseriesPanel('การล็อกสัญญาณ', [ts('receiver', `min(${fd('receiver', 'lock')})`).alias('lock')], { min: 0, max: 1, span: 8, legend: 'list' }),
      ],
    },
  };
  const layout = DEVICE_ROWS[kind];
  let d = base(deviceUid(kind), `klaiwatch · อุปกรณ์: ${KIND_TH[kind]} (${kind})`, `One ${kind}: its state, what it is, what is not watched, failed checks, and the figures its kind has (rows that only some ${kind}s fill start collapsed).`)
    .withVariable(schoolVariable(area))
    .withVariable(deviceVariable(kind))
    .withPanel(
      stateTimeline('สถานะ', new InfluxQL(`SELECT last(${fd('device_state', 'state_code')}) FROM ${from('device_state')} WHERE ${dev('device_state')} AND $timeFilter GROUP BY time($__interval) fill(previous)`).alias('$device'), deviceStateMapping, { height: 4 }),
    )
    .withPanel(
      tablePanel(
        'อุปกรณ์นี้คือ (device facts)',
        new InfluxQL(
          `SELECT last(${fd('device_info', 'model')}) AS "model", last(${fd('device_info', 'firmware')}) AS "firmware", last(${fd('device_info', 'serial')}) AS "serial", last(${fd('device_info', 'vendor')}) AS "vendor", last(${fd('device_info', 'sys_name')}) AS "sys_name", last(${fd('device_info', 'description')}) AS "description" FROM ${from('device_info')} WHERE ${dev('device_info')} AND $timeFilter`,
        ),
        {
          span: 12,
          height: 5,
          description: "What the device says it is: sysDescr, sysName, ENTITY-MIB model, firmware, serial (or its maker's own objects).",
          columns: { model: { th: 'รุ่น' }, firmware: { th: 'เฟิร์มแวร์' }, serial: { th: 'หมายเลขเครื่อง' }, vendor: { th: 'ผู้ผลิต' }, sys_name: { th: 'ชื่อในเครื่อง' }, description: { th: 'คำอธิบาย' } },
        },
      ),
    )
    .withPanel(
      tablePanel(
        'สิ่งที่ไม่ได้เฝ้าดู (not watched)',
        new InfluxQL(`SELECT last(${fd('device', 'not_watched')}) AS "not_watched", sum(${fd('device', 'values_dropped')}) AS "values_dropped" FROM ${from('device')} WHERE ${dev('device')} AND $timeFilter GROUP BY ${tag('device', 'profile')}`),
        {
          span: 12,
          height: 5,
          description:
            'ไม่ได้เฝ้าดู: checks of this kind of device (receiver lock, disks, memory) that its profile cannot feed, e.g. a receiver polled with profile generic has no lock check. ค่าที่ทิ้ง: values the polls dropped as impossible (a percentage above 100, a speed above 400 Gbit/s) in the chosen time. profile: the profile used (auto: chosen by sysObjectID).',
          columns: { profile: { th: 'โปรไฟล์' }, not_watched: { th: 'ไม่ได้เฝ้าดู' }, values_dropped: { th: 'ค่าที่ทิ้ง' } },
        },
      ),
    );
  for (const r of layout.open) {
    d = d.withRow(new dashboard.RowBuilder(rows[r].title));
    for (const p of rows[r].panels()) d = d.withPanel(p);
  }
  d = d
    .withRow(new dashboard.RowBuilder('การเข้าถึง (reachability)'))
    .withPanel(timeseriesPanel('RTT', [ts('icmp', `mean(${fd('icmp', 'rtt_min_ms')}) AS "min", mean(${fd('icmp', 'rtt_avg_ms')}) AS "avg", max(${fd('icmp', 'rtt_max_ms')}) AS "max"`).alias('$col')], { unit: 'ms', min: 0, span: 8 }))
    .withPanel(timeseriesPanel('การสูญหาย', [ts('icmp', `mean(${fd('icmp', 'loss_pct')})`).alias('loss')], { unit: 'percent', min: 0, max: 100, span: 8, legend: 'list' }))
    .withPanel(timeseriesPanel('เวลาที่ใช้ poll SNMP', [ts('device', `mean(${fd('device', 'poll_ms')})`).alias('poll')], { unit: 'ms', min: 0, span: 8, legend: 'list' }));
  for (const r of layout.collapsed) {
    const row = new dashboard.RowBuilder(`${rows[r].title} · เฉพาะบางเครื่อง`).collapsed(true);
    for (const p of rows[r].panels()) row.withPanel(p);
    d = d.withRow(row);
  }
  return d;
}

// ----------------------------------------------------------------------- DLTV

export function dltvDashboard(area: DashboardArea = NO_AREA): dashboard.DashboardBuilder {
  const rx = (m: 'receiver' | 'device_state') => `${equals(m, 'kind', 'dltv-receiver')} AND ${matches(m, 'school', 'school')}`;
  return base('klaiwatch-dltv', 'klaiwatch · DLTV ห้องเรียน (DLTV classrooms)', 'Classroom receivers during broadcast periods: lock, signal, readiness per school today.')
    .time({ from: 'now/d', to: 'now' })
    .withVariable(schoolVariable(area, { all: true }))
    .withPanel(
      new bargauge.PanelBuilder()
        .title('ความพร้อม DLTV วันนี้ (% ของเวลาออกอากาศที่เครื่องรับใช้งานได้)')
        .description('Judged time only: the calendar\'s broadcast periods on school days (config/calendar). The report counts classroom-periods; this is the share of judged rounds.')
        .datasource(DATASOURCE)
        .withTarget(
          new InfluxQL(`SELECT mean(${fd('device_state', 'up')}) * 100 FROM ${from('device_state')} WHERE ${rx('device_state')} AND "judged" = 1 AND $timeFilter GROUP BY ${tag('device_state', 'school_name')}`)
            .alias('$tag_school_name')
            .refId('A'),
        )
        .timeFrom('now/d')
        .unit('percent')
        .min(0)
        .max(100)
        .thresholds(availabilityThresholds())
        .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.Thresholds))
        .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
        .orientation(common.VizOrientation.Horizontal)
        .height(12)
        .span(24),
    )
    .withPanel(
      stateTimeline(
        'การล็อกสัญญาณของเครื่องรับรายห้องเรียน',
        new InfluxQL(`SELECT min(${fd('receiver', 'lock')}) FROM ${from('receiver')} WHERE ${rx('receiver')} AND $timeFilter GROUP BY time($__interval), ${tag('receiver', 'school_name')}, ${tag('receiver', 'device')} fill(null)`).alias('$tag_school_name $tag_device'),
        [{ type: dashboard.MappingType.ValueToText, options: { '0': { text: 'ไม่ล็อก', color: 'red', index: 0 }, '1': { text: 'ล็อก', color: 'green', index: 1 } } }],
        { height: 12 },
      ),
    )
    .withPanel(
      timeseriesPanel('ระดับสัญญาณ', [new InfluxQL(`SELECT mean(${fd('receiver', 'signal_dbm')}) FROM ${from('receiver')} WHERE ${rx('receiver')} AND $timeFilter GROUP BY time($__interval), ${tag('receiver', 'device')} fill(null)`).alias('$tag_device')], {
        unit: 'dBm',
      }),
    )
    .withPanel(
      timeseriesPanel('C/N', [new InfluxQL(`SELECT mean(${fd('receiver', 'cn_db')}) FROM ${from('receiver')} WHERE ${rx('receiver')} AND $timeFilter GROUP BY time($__interval), ${tag('receiver', 'device')} fill(null)`).alias('$tag_device')], { unit: 'dB' }),
    )
    .withPanel(
      stateTimeline(
        'สถานะเครื่องรับ (เฉพาะเวลาออกอากาศ)',
        new InfluxQL(`SELECT last(${fd('device_state', 'state_code')}) FROM ${from('device_state')} WHERE ${rx('device_state')} AND "judged" = 1 AND $timeFilter GROUP BY time($__interval), ${tag('device_state', 'device')} fill(null)`).alias('$tag_device'),
        deviceStateMapping,
      ),
    );
}

// ----------------------------------------------------------------- evaluation

export function evaluationDashboard(area: DashboardArea = NO_AREA): dashboard.DashboardBuilder {
  const perSchool = (title: string, q: InfluxQL, unit: string, description: string, thresholdsOf = availabilityThresholds()) =>
    new bargauge.PanelBuilder()
      .title(title)
      .description(description)
      .datasource(DATASOURCE)
      .withTarget(q.alias('$tag_school_name').refId('A'))
      .unit(unit)
      .thresholds(thresholdsOf)
      .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.Thresholds))
      .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
      .orientation(common.VizOrientation.Horizontal)
      .height(12)
      .span(12);
  return base('klaiwatch-evaluation', 'klaiwatch · ผลการประเมิน (Evaluation)', 'Availability and DLTV readiness per school for the chosen range, incidents and time to repair, latency and loss. The printable figures, to the second, come from `klaiwatch report`.')
    .time({ from: 'now-30d', to: 'now' })
    .refresh('')
    .withVariable(rpVariable())
    .withPanel(
      perSchool(
        'สภาพพร้อมใช้งานของเราเตอร์ (availability %)',
        new InfluxQL(`SELECT mean(${fd('device_state', 'up')}) * 100 FROM ${from('device_state', '$rp')} WHERE ${equals('device_state', 'kind', 'router')} AND $timeFilter GROUP BY ${tag('device_state', 'school_name')}`),
        'percent',
        'ส่วนของเวลาที่ตัดสินได้ที่เราเตอร์ใช้งานได้ (ไม่รวมช่วงปิดปรับปรุง)',
      ).min(0).max(100),
    )
    .withPanel(
      perSchool(
        'ความพร้อม DLTV (readiness %)',
        new InfluxQL(`SELECT mean(${fd('device_state', 'up')}) * 100 FROM ${from('device_state', '$rp')} WHERE ${equals('device_state', 'kind', 'dltv-receiver')} AND "judged" = 1 AND $timeFilter GROUP BY ${tag('device_state', 'school_name')}`),
        'percent',
        'ส่วนของเวลาออกอากาศที่เครื่องรับใช้งานได้',
      ).min(0).max(100),
    )
    .withPanel(
      perSchool(
        'จำนวนเหตุขัดข้อง (incidents)',
        new InfluxQL(`SELECT sum(${fd('incident', 'opened')}) FROM ${from('incident', '$rp')} WHERE ${OUTAGE_INFLUXQL} AND $timeFilter GROUP BY ${tag('incident', 'school_name')}`),
        'short',
        'outages that began in the range: the device itself down, not a failed check, not unreachable behind a failed parent (stores/definitions.ts, as `klaiwatch report` counts them; the report also leaves out outages wholly outside observed or scheduled time)',
        thresholds([[null, 'green'], [1, 'yellow'], [5, 'red']]),
      ),
    )
    .withPanel(
      perSchool(
        'เวลาเฉลี่ยในการแก้ไข (MTTR)',
        new InfluxQL(`SELECT mean(${fd('incident', 'duration_s')}) FROM ${from('incident', '$rp')} WHERE ${OUTAGE_INFLUXQL} AND $timeFilter GROUP BY ${tag('incident', 'school_name')}`),
        's',
        'mean whole duration of the outages (as counted beside) that ended in the range: the report\'s time to repair',
        thresholds([[null, 'green'], [3600, 'yellow'], [86400, 'red']]),
      ),
    )
    .withPanel(
      tablePanel(
        'ความหน่วงและการสูญหายของลิงก์โรงเรียน (median / p95)',
        new InfluxQL(
          `SELECT median(${fd('icmp', 'rtt_avg_ms')}) AS "rtt_median_ms", percentile(${fd('icmp', 'rtt_avg_ms')}, 95) AS "rtt_p95_ms", median(${fd('icmp', 'loss_pct')}) AS "loss_median_pct", percentile(${fd('icmp', 'loss_pct')}, 95) AS "loss_p95_pct" FROM ${from('icmp', '$rp')} WHERE ${equals('icmp', 'kind', 'router')} AND $timeFilter GROUP BY ${tag('icmp', 'school')}, ${tag('icmp', 'school_name')}`,
        ),
        {
          span: 12,
          height: 12,
          sortBy: { displayName: 'ความหน่วง p95 (ms)', desc: true },
          columns: {
            school: { hidden: true },
            school_name: { links: [schoolLink()] },
            rtt_median_ms: { th: 'ความหน่วง มัธยฐาน (ms)', unit: 'ms', decimals: 1 },
            rtt_p95_ms: { th: 'ความหน่วง p95 (ms)', unit: 'ms', decimals: 1 },
            loss_median_pct: { th: 'สูญหาย มัธยฐาน (%)', unit: 'percent', decimals: 2 },
            loss_p95_pct: { th: 'สูญหาย p95 (%)', unit: 'percent', decimals: 2 },
          },
        },
      ),
    )
    .withPanel(
      tablePanel(
        `การใช้ uplink ของโรงเรียน (p95 และเวลาที่เกิน ${UPLINK_BUSY_PCT} %)`,
        new InfluxQL(
          `SELECT percentile("in_pct", 95) AS "in_p95", percentile("out_pct", 95) AS "out_p95", mean("busy") * 100 AS "busy_pct", mean("busy") * 24 AS "busy_h_day" FROM (${uplinkUseQuery(from('interface', '$rp'), uplinksWhere(area), '$timeFilter')}) WHERE $timeFilter GROUP BY "school", "school_name", "ifname"`,
        ),
        {
          span: 12,
          height: 12,
          sortBy: { displayName: 'p95 ขาเข้า (%)', desc: true },
          description: `${UPLINK_HOW} Only each school's uplink, one row per school; on the 5-minute roll-ups the points are 5-minute means.`,
          columns: {
            school: { hidden: true },
            school_name: { links: [schoolLink()] },
            ifname: {},
            in_p95: { th: 'p95 ขาเข้า (%)', unit: 'percent', decimals: 1 },
            out_p95: { th: 'p95 ขาออก (%)', unit: 'percent', decimals: 1 },
            busy_pct: { th: `เวลาที่เกิน ${UPLINK_BUSY_PCT} % (% ของเวลา)`, unit: 'percent', decimals: 1 },
            busy_h_day: { th: `เกิน ${UPLINK_BUSY_PCT} % (ชม./วัน)`, unit: 'h', decimals: 1 },
          },
        },
      ),
    );
}

// ------------------------------------------------------------ klaiwatch health

export function healthDashboard(): dashboard.DashboardBuilder {
  const traffic = (select: string) => new InfluxQL(`SELECT ${select} FROM ${from('traffic')} WHERE $timeFilter GROUP BY time($__interval), ${tag('traffic', 'instance')} fill(null)`).alias('$tag_instance $col');
  const self = (select: string) => new InfluxQL(`SELECT ${select} FROM ${from('klaiwatch')} WHERE $timeFilter GROUP BY time($__interval), ${tag('klaiwatch', 'instance')}, ${tag('klaiwatch', 'interval')} fill(null)`).alias('$tag_instance $tag_interval $col');
  return base('klaiwatch-health', 'klaiwatch · สุขภาพของระบบ (klaiwatch health)', "The collector's own figures: polling rounds, failures, the InfluxDB spool, points written, clock offset, memory; the traffic-log archive's ingest, losses and size.")
    .withPanel(timeseriesPanel('เวลาต่อรอบ poll', [self(`max(${fd('klaiwatch', 'round_ms')}) AS "ทั้งรอบ (round_ms)", max(${fd('klaiwatch', 'icmp_ms')}) AS "ช่วง ping (icmp_ms)"`)], { unit: 'ms', min: 0 }))
    .withPanel(
      timeseriesPanel('อุปกรณ์ต่อรอบ', [self(`last(${fd('klaiwatch', 'devices')}) AS "ตามกำหนด (devices)", last(${fd('klaiwatch', 'devices_polled')}) AS "ตอบ SNMP (devices_polled)", last(${fd('klaiwatch', 'devices_failed')}) AS "poll ไม่สำเร็จ (devices_failed)", last(${fd('klaiwatch', 'icmp_down')}) AS "ไม่ตอบ ping (icmp_down)"`)], { min: 0 }),
    )
    .withPanel(timeseriesPanel('SNMP timeouts และรอบที่ข้าม', [self(`sum(${fd('klaiwatch', 'snmp_timeouts')}) AS "หมดเวลารอ (snmp_timeouts)", sum(${fd('klaiwatch', 'overruns')}) AS "รอบที่ข้าม (overruns)"`)], { min: 0 }))
    .withPanel(
      timeseriesPanel(
        'จุดข้อมูลที่เขียน (ต่อวินาที)',
        [self(`non_negative_derivative(last(${fd('klaiwatch', 'points_written')}), 1s) AS "เขียนแล้ว (points_written)", non_negative_derivative(last(${fd('klaiwatch', 'points_dropped')}), 1s) AS "ทิ้ง (points_dropped)"`)],
        { unit: 'short', min: 0 },
      ),
    )
    .withPanel(timeseriesPanel('สปูลบนดิสก์ (InfluxDB ไม่ว่าง)', [self(`last(${fd('klaiwatch', 'spool_bytes')}) AS "สปูล (spool_bytes)"`)], { unit: 'bytes', min: 0 }))
    .withPanel(
      timeseriesPanel('ความคลาดเคลื่อนของนาฬิกา (NTP)', [self(`mean(${fd('klaiwatch', 'clock_offset_ms')}) AS "ความคลาดเคลื่อน (clock_offset_ms)"`)], {
        unit: 'ms',
        description: 'ประกาศกระทรวงฯ 2550 ข้อ 9: ต้องไม่เกิน 10 ms',
      }).thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Line)).thresholds(thresholds([[null, 'green'], [10, 'red']])),
    )
    .withPanel(timeseriesPanel('หน่วยความจำของ collector', [self(`max(${fd('klaiwatch', 'rss_bytes')}) AS "หน่วยความจำที่ใช้ (rss_bytes)"`)], { unit: 'bytes', min: 0 }))
    .withRow(new dashboard.RowBuilder('ข้อมูลจราจรทางคอมพิวเตอร์ (traffic-log archive)'))
    .withPanel(
      timeseriesPanel(
        'รับเข้า (ต่อวินาที)',
        [
          traffic(
            `non_negative_derivative(last(${fd('traffic', 'syslog_received')}), 1s) AS "ข้อความ syslog (syslog_received)", non_negative_derivative(last(${fd('traffic', 'flows_received')}), 1s) AS "ระเบียน flow (flows_received)", non_negative_derivative(last(${fd('traffic', 'stored')}), 1s) AS "บันทึกลง log แล้ว (stored)"`,
          ),
        ],
        { unit: 'short', min: 0, span: 8, description: 'syslog messages and flow records received, and records made durable in the write-ahead log' },
      ),
    )
    .withPanel(
      timeseriesPanel(
        'ความสูญหายและความผิดปกติ',
        [
          traffic(
            `last(${fd('traffic', 'udp_drops')}) AS "เคอร์เนลทิ้ง UDP (udp_drops)", last(${fd('traffic', 'malformed')}) AS "รูปแบบผิด (malformed)", last(${fd('traffic', 'write_failed')}) AS "เขียนไม่สำเร็จ (write_failed)", last(${fd('traffic', 'flows_held_dropped')}) AS "flow ไม่มี template (flows_held_dropped)", last(${fd('traffic', 'paused')}) AS "ผู้ส่งที่ถูกหยุดรับ (paused)"`,
          ),
        ],
        { min: 0, span: 8, description: 'ตัวนับตั้งแต่บริการเริ่มทำงาน: ค่าใดนอกจาก "ผู้ส่งที่ถูกหยุดรับ" ที่มากกว่า 0 ควรตรวจดู (counters since the service started)' },
      ),
    )
    .withPanel(
      timeseriesPanel('ขนาดคลังข้อมูล', [traffic(`last(${fd('traffic', 'archive_bytes')}) AS "segment ที่ปิดผนึกแล้ว (archive_bytes)", last(${fd('traffic', 'wal_bytes')}) AS "log ที่ยังไม่ปิดผนึก (wal_bytes)"`)], { unit: 'bytes', min: 0, span: 8 }),
    )
    .withPanel(
      timeseriesPanel('เวลา poll ต่ออุปกรณ์ (p95)', [new InfluxQL(`SELECT percentile(${fd('device', 'poll_ms')}, 95) FROM ${from('device')} WHERE $timeFilter GROUP BY time($__interval), ${tag('device', 'kind')} fill(null)`).alias('$tag_kind')], {
        unit: 'ms',
        min: 0,
      }),
    );
}

/** Every dashboard, by the name its file carries (klaiwatch-NAME.json): one device dashboard per kind, so a data link goes to the kind's own. */
export function dashboardsFor(area: DashboardArea = NO_AREA): Record<string, () => dashboard.DashboardBuilder> {
  const out: Record<string, () => dashboard.DashboardBuilder> = {
    area: () => areaDashboard(area),
    school: () => schoolDashboard(area),
  };
  for (const kind of DEVICE_KINDS) out[`device-${kind}`] = () => deviceDashboard(kind, area);
  out.dltv = () => dltvDashboard(area);
  out.evaluation = () => evaluationDashboard(area);
  out.health = () => healthDashboard();
  return out;
}
