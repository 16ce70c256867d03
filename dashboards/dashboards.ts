// The six dashboards, as code. Every query is an InfluxQL built from the
// measurement schema's names; `klaiwatch dashboards build` writes them out
// and test/dashboards runs every panel's query against a real InfluxDB.
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as geomap from '@grafana/grafana-foundation-sdk/geomap';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import { DATASOURCE, InfluxQL, from, field as fd, tag, matches, equals } from './influxql.ts';
import type { FieldName } from '../collector/schema.ts';
import { OUTAGE_INFLUXQL } from '../report/definitions.ts';
import {
  availabilityThresholds,
  deviceStateMapping,
  deviceVariable,
  rpVariable,
  schoolStateMapping,
  schoolVariable,
  statPanel,
  stateTextMapping,
  tablePanel,
  thresholds,
  timeseriesPanel,
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

export function areaDashboard(): dashboard.DashboardBuilder {
  const count = (f: 'schools_up' | 'schools_degraded' | 'schools_down' | 'schools_unreachable' | 'incidents_open' | 'devices_down') => new InfluxQL(areaTotals([f]));
  const map = new geomap.PanelBuilder()
    .title('แผนที่โรงเรียน (สีตามสถานะล่าสุด)')
    .description('ตำแหน่งจากทะเบียนโรงเรียน (inventory: location). Schools without a location are not drawn.')
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
        `SELECT mean(${fd('icmp', 'loss_pct')}) AS "loss_pct", mean(${fd('icmp', 'rtt_avg_ms')}) AS "rtt_avg_ms" FROM ${from('icmp')} WHERE ${equals('icmp', 'kind', 'router')} AND $timeFilter GROUP BY ${tag('icmp', 'school_name')}`,
      ),
      { span: 6, height: 14, sortBy: { displayName: f, desc: true }, description: `เราเตอร์ของแต่ละโรงเรียน เรียงจากมากไปน้อย (${unit})` },
    );
  return base('klaiwatch-area', 'klaiwatch · ภาพรวมเขตพื้นที่ (Area overview)', 'Schools up, down and unreachable now; the map; the schools with the worst links; outages open now.')
    .withRow(new dashboard.RowBuilder('สถานะตอนนี้ (now)'))
    .withPanel(statPanel('โรงเรียนปกติ', count('schools_up'), { thresholds: thresholds([[null, 'green']]) }))
    .withPanel(statPanel('บางอุปกรณ์ขัดข้อง', count('schools_degraded'), { thresholds: thresholds([[null, 'green'], [1, 'yellow']]) }))
    .withPanel(statPanel('โรงเรียนขัดข้อง (เราเตอร์)', count('schools_down'), { thresholds: thresholds([[null, 'green'], [1, 'red']]) }))
    .withPanel(statPanel('ติดต่อไม่ได้ (ต้นทางขัดข้อง)', count('schools_unreachable'), { thresholds: thresholds([[null, 'green'], [1, 'orange']]) }))
    .withPanel(statPanel('เหตุขัดข้องที่ยังเปิดอยู่', count('incidents_open'), { thresholds: thresholds([[null, 'green'], [1, 'red']]) }))
    .withPanel(statPanel('อุปกรณ์ขัดข้อง', count('devices_down'), { thresholds: thresholds([[null, 'green'], [1, 'red']]) }))
    .withPanel(map)
    .withPanel(
      tablePanel(
        'อุปกรณ์ที่ขัดข้องตอนนี้ (open outages)',
        new InfluxQL(
          `SELECT "state", "state_code" FROM (SELECT last(${fd('device_state', 'state')}) AS "state", last(${fd('device_state', 'state_code')}) AS "state_code" FROM ${from('device_state')} WHERE $timeFilter GROUP BY ${tag('device_state', 'school_name')}, ${tag('device_state', 'device')}, ${tag('device_state', 'kind')}) WHERE "state_code" = 2 OR "state_code" = 3 GROUP BY "school_name", "device", "kind"`,
        ),
        { span: 12, height: 14, description: 'สถานะล่าสุดของอุปกรณ์ที่ขัดข้องหรือติดต่อไม่ได้; the incidents themselves, with their causes, are in the state database and the report.' },
      ).mappings(stateTextMapping),
    )
    .withRow(new dashboard.RowBuilder('คุณภาพลิงก์ (link quality)'))
    .withPanel(worst('loss_pct', 'โรงเรียนที่สูญหายแพ็กเก็ตมากที่สุด (loss %)', '%'))
    .withPanel(worst('rtt_avg_ms', 'โรงเรียนที่หน่วงมากที่สุด (latency ms)', 'ms'))
    .withPanel(
      timeseriesPanel(
        'จำนวนอุปกรณ์ตามสถานะ',
        [
          new InfluxQL(areaTotals(['devices_up', 'devices_down', 'devices_unreachable', 'devices_unknown'], { interval: '$__interval', as: ['ปกติ', 'ขัดข้อง', 'ติดต่อไม่ได้', 'ไม่ทราบ'] })),
        ],
        { span: 12, min: 0 },
      ),
    );
}

// --------------------------------------------------------------------- school

export function schoolDashboard(): dashboard.DashboardBuilder {
  const inSchool = (m: 'device_state' | 'icmp' | 'interface' | 'device') => matches(m, 'school', 'school');
  return base('klaiwatch-school', 'klaiwatch · โรงเรียน (School)', "One school: its devices' states, its router's traffic, latency and loss.")
    .withVariable(schoolVariable())
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
        'สถานะอุปกรณ์ของโรงเรียน $school',
        new InfluxQL(`SELECT last(${fd('device_state', 'state_code')}) FROM ${from('device_state')} WHERE ${inSchool('device_state')} AND $timeFilter GROUP BY time($__interval), ${tag('device_state', 'device')} fill(previous)`).alias('$tag_device'),
        deviceStateMapping,
      ),
    )
    .withPanel(
      timeseriesPanel(
        'ทราฟฟิกของเราเตอร์ เข้า/ออก (uplink)',
        [
          new InfluxQL(`SELECT mean(${fd('interface', 'in_bps')}) FROM ${from('interface')} WHERE ${inSchool('interface')} AND ${equals('interface', 'kind', 'router')} AND ${matches('interface', 'ifname', 'ifname')} AND $timeFilter GROUP BY time($__interval), ${tag('interface', 'ifname')} fill(null)`).alias('$tag_ifname เข้า'),
          new InfluxQL(`SELECT -mean(${fd('interface', 'out_bps')}) FROM ${from('interface')} WHERE ${inSchool('interface')} AND ${equals('interface', 'kind', 'router')} AND ${matches('interface', 'ifname', 'ifname')} AND $timeFilter GROUP BY time($__interval), ${tag('interface', 'ifname')} fill(null)`).alias('$tag_ifname ออก'),
        ],
        { unit: 'bps', description: 'ขาเข้าอยู่ด้านบน ขาออกอยู่ด้านล่าง (ค่าลบ). Choose the uplink port in the ifname picker.' },
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
    )
    .withPanel(
      tablePanel(
        'อุปกรณ์และสถานะล่าสุด',
        new InfluxQL(`SELECT last(${fd('device_state', 'state')}) AS "state", mean(${fd('device_state', 'up')}) * 100 AS "availability_pct" FROM ${from('device_state')} WHERE ${inSchool('device_state')} AND $timeFilter GROUP BY ${tag('device_state', 'device')}, ${tag('device_state', 'kind')}`),
        { span: 24, description: 'availability_pct: ส่วนของเวลาในช่วงที่เลือกที่อุปกรณ์ใช้งานได้ (จากสถานะรายรอบ)' },
      )
        .mappings(stateTextMapping)
        .overrideByName('availability_pct', [{ id: 'unit', value: 'percent' }, { id: 'decimals', value: 2 }]),
    );
}

// --------------------------------------------------------------------- device

export function deviceDashboard(): dashboard.DashboardBuilder {
  const dev = (m: 'interface' | 'system' | 'storage' | 'receiver' | 'icmp' | 'device' | 'device_state' | 'device_info') => matches(m, 'device', 'device');
  const ts = (m: 'interface' | 'system' | 'storage' | 'receiver' | 'icmp' | 'device', select: string, by = '') =>
    new InfluxQL(`SELECT ${select} FROM ${from(m)} WHERE ${dev(m)} AND $timeFilter GROUP BY time($__interval)${by ? `, ${by}` : ''} fill(null)`);
  return base('klaiwatch-device', 'klaiwatch · อุปกรณ์ (Device)', "One device: its interfaces' traffic and errors, CPU, memory, disks, and a receiver's signal.")
    .withVariable(schoolVariable())
    .withVariable(deviceVariable())
    .withPanel(
      stateTimeline('สถานะ $device', new InfluxQL(`SELECT last(${fd('device_state', 'state_code')}) FROM ${from('device_state')} WHERE ${dev('device_state')} AND $timeFilter GROUP BY time($__interval) fill(previous)`).alias('$device'), deviceStateMapping, { height: 4 }),
    )
    .withPanel(
      tablePanel(
        'อุปกรณ์นี้คือ (device facts)',
        new InfluxQL(
          `SELECT last(${fd('device_info', 'model')}) AS "model", last(${fd('device_info', 'firmware')}) AS "firmware", last(${fd('device_info', 'serial')}) AS "serial", last(${fd('device_info', 'vendor')}) AS "vendor", last(${fd('device_info', 'sys_name')}) AS "sys_name", last(${fd('device_info', 'description')}) AS "description" FROM ${from('device_info')} WHERE ${dev('device_info')} AND $timeFilter`,
        ),
        { span: 12, height: 5, description: 'What the device says it is: sysDescr, sysName, ENTITY-MIB model, firmware, serial (or its maker\'s own objects).' },
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
            'not_watched: checks of this kind of device (receiver lock, disks, memory) that its profile cannot feed, e.g. a receiver polled with profile generic has no lock check. values_dropped: values the polls dropped as impossible (a percentage above 100, a speed above 400 Gbit/s) in the chosen time. profile: the profile used (auto: chosen by sysObjectID).',
        },
      ),
    )
    .withRow(new dashboard.RowBuilder('อินเทอร์เฟซ (interfaces)'))
    .withPanel(
      timeseriesPanel(
        'ทราฟฟิก เข้า/ออก',
        [
          ts('interface', `mean(${fd('interface', 'in_bps')})`, tag('interface', 'ifname')).alias('$tag_ifname เข้า'),
          ts('interface', `-mean(${fd('interface', 'out_bps')})`, tag('interface', 'ifname')).alias('$tag_ifname ออก'),
        ],
        { unit: 'bps' },
      ),
    )
    .withPanel(
      timeseriesPanel(
        'ข้อผิดพลาดและการทิ้งแพ็กเก็ต',
        [
          ts('interface', `mean(${fd('interface', 'in_errors_ps')}) AS "in_errors", mean(${fd('interface', 'out_errors_ps')}) AS "out_errors", mean(${fd('interface', 'in_discards_ps')}) AS "in_discards", mean(${fd('interface', 'out_discards_ps')}) AS "out_discards"`, tag('interface', 'ifname')).alias(
            '$tag_ifname $col',
          ),
        ],
        { unit: 'pps', min: 0 },
      ),
    )
    .withRow(new dashboard.RowBuilder('ระบบ (system)'))
    .withPanel(timeseriesPanel('CPU', [ts('system', `mean(${fd('system', 'cpu_pct')})`).alias('CPU')], { unit: 'percent', min: 0, max: 100, span: 8 }))
    .withPanel(timeseriesPanel('หน่วยความจำ', [ts('system', `mean(${fd('system', 'mem_used_pct')})`).alias('memory')], { unit: 'percent', min: 0, max: 100, span: 8 }))
    .withPanel(
      // A firewall's hottest sensor is its system temperature (each sensor: measurement sensor).
      timeseriesPanel('อุณหภูมิ', [ts('system', `mean(${fd('system', 'temperature_c')})`).alias('temperature')], { unit: 'celsius', span: 8 }),
    )
    .withPanel(timeseriesPanel('พื้นที่จัดเก็บ', [ts('storage', `mean(${fd('storage', 'used_pct')})`, tag('storage', 'storage')).alias('$tag_storage')], { unit: 'percent', min: 0, max: 100, span: 8 }))
    .withRow(new dashboard.RowBuilder('สัญญาณดาวเทียม (receivers)'))
    .withPanel(timeseriesPanel('ระดับสัญญาณ', [ts('receiver', `mean(${fd('receiver', 'signal_dbm')})`).alias('level dBm')], { unit: 'dBm', span: 8 }))
    .withPanel(timeseriesPanel('C/N และ Eb/No', [ts('receiver', `mean(${fd('receiver', 'cn_db')}) AS "C/N", mean(${fd('receiver', 'ebno_db')}) AS "Eb/No"`).alias('$col')], { unit: 'dB', span: 8 }))
    .withPanel(timeseriesPanel('การล็อกสัญญาณ', [ts('receiver', `min(${fd('receiver', 'lock')})`).alias('lock')], { min: 0, max: 1, span: 8 }))
    .withRow(new dashboard.RowBuilder('การเข้าถึง (reachability)'))
    .withPanel(timeseriesPanel('RTT', [ts('icmp', `mean(${fd('icmp', 'rtt_min_ms')}) AS "min", mean(${fd('icmp', 'rtt_avg_ms')}) AS "avg", max(${fd('icmp', 'rtt_max_ms')}) AS "max"`).alias('$col')], { unit: 'ms', min: 0, span: 8 }))
    .withPanel(timeseriesPanel('การสูญหาย', [ts('icmp', `mean(${fd('icmp', 'loss_pct')})`).alias('loss')], { unit: 'percent', min: 0, max: 100, span: 8 }))
    .withPanel(timeseriesPanel('เวลาที่ใช้ poll SNMP', [ts('device', `mean(${fd('device', 'poll_ms')})`).alias('poll')], { unit: 'ms', min: 0, span: 8 }));
}

// ----------------------------------------------------------------------- DLTV

export function dltvDashboard(): dashboard.DashboardBuilder {
  const rx = (m: 'receiver' | 'device_state') => `${equals(m, 'kind', 'dltv-receiver')} AND ${matches(m, 'school', 'school')}`;
  return base('klaiwatch-dltv', 'klaiwatch · DLTV ห้องเรียน (DLTV classrooms)', 'Classroom receivers during broadcast periods: lock, signal, readiness per school today.')
    .time({ from: 'now/d', to: 'now' })
    .withVariable(schoolVariable({ all: true }))
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

export function evaluationDashboard(): dashboard.DashboardBuilder {
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
        'outages that began in the range: the device itself down, not a failed check, not unreachable behind a failed parent (report/definitions.ts, as `klaiwatch report` counts them; the report also leaves out outages wholly outside observed or scheduled time)',
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
          `SELECT median(${fd('icmp', 'rtt_avg_ms')}) AS "rtt_median_ms", percentile(${fd('icmp', 'rtt_avg_ms')}, 95) AS "rtt_p95_ms", median(${fd('icmp', 'loss_pct')}) AS "loss_median_pct", percentile(${fd('icmp', 'loss_pct')}, 95) AS "loss_p95_pct" FROM ${from('icmp', '$rp')} WHERE ${equals('icmp', 'kind', 'router')} AND $timeFilter GROUP BY ${tag('icmp', 'school_name')}`,
        ),
        { span: 12, height: 12, sortBy: { displayName: 'rtt_p95_ms', desc: true } },
      ),
    )
    .withPanel(
      tablePanel(
        'การใช้แบนด์วิดท์ของเราเตอร์ (p95, bps)',
        new InfluxQL(
          `SELECT percentile(${fd('interface', 'in_bps')}, 95) AS "in_p95_bps", percentile(${fd('interface', 'out_bps')}, 95) AS "out_p95_bps", max(${fd('interface', 'in_bps')}) AS "in_max_bps" FROM ${from('interface', '$rp')} WHERE ${equals('interface', 'kind', 'router')} AND $timeFilter GROUP BY ${tag('interface', 'school_name')}, ${tag('interface', 'ifname')}`,
        ),
        { span: 12, height: 12, sortBy: { displayName: 'in_p95_bps', desc: true } },
      ).unit('bps'),
    );
}

// ------------------------------------------------------------ klaiwatch health

export function healthDashboard(): dashboard.DashboardBuilder {
  const traffic = (select: string) => new InfluxQL(`SELECT ${select} FROM ${from('traffic')} WHERE $timeFilter GROUP BY time($__interval), ${tag('traffic', 'instance')} fill(null)`).alias('$tag_instance $col');
  const self = (select: string) => new InfluxQL(`SELECT ${select} FROM ${from('klaiwatch')} WHERE $timeFilter GROUP BY time($__interval), ${tag('klaiwatch', 'instance')}, ${tag('klaiwatch', 'interval')} fill(null)`).alias('$tag_instance $tag_interval $col');
  return base('klaiwatch-health', 'klaiwatch · สุขภาพของระบบ (klaiwatch health)', "The collector's own figures: polling rounds, failures, the InfluxDB spool, points written, clock offset, memory; the traffic-log archive's ingest, losses and size.")
    .withPanel(timeseriesPanel('เวลาต่อรอบ poll', [self(`max(${fd('klaiwatch', 'round_ms')}) AS "round", max(${fd('klaiwatch', 'icmp_ms')}) AS "icmp"`)], { unit: 'ms', min: 0 }))
    .withPanel(
      timeseriesPanel('อุปกรณ์ต่อรอบ', [self(`last(${fd('klaiwatch', 'devices')}) AS "scheduled", last(${fd('klaiwatch', 'devices_polled')}) AS "answered", last(${fd('klaiwatch', 'devices_failed')}) AS "failed", last(${fd('klaiwatch', 'icmp_down')}) AS "icmp silent"`)], { min: 0 }),
    )
    .withPanel(timeseriesPanel('SNMP timeouts และรอบที่ข้าม', [self(`sum(${fd('klaiwatch', 'snmp_timeouts')}) AS "timeouts", sum(${fd('klaiwatch', 'overruns')}) AS "overruns"`)], { min: 0 }))
    .withPanel(
      timeseriesPanel(
        'จุดข้อมูลที่เขียน (ต่อวินาที)',
        [self(`non_negative_derivative(last(${fd('klaiwatch', 'points_written')}), 1s) AS "written", non_negative_derivative(last(${fd('klaiwatch', 'points_dropped')}), 1s) AS "dropped"`)],
        { unit: 'short', min: 0 },
      ),
    )
    .withPanel(timeseriesPanel('สปูลบนดิสก์ (InfluxDB ไม่ว่าง)', [self(`last(${fd('klaiwatch', 'spool_bytes')}) AS "spool"`)], { unit: 'bytes', min: 0 }))
    .withPanel(
      timeseriesPanel('ความคลาดเคลื่อนของนาฬิกา (NTP)', [self(`mean(${fd('klaiwatch', 'clock_offset_ms')}) AS "offset"`)], {
        unit: 'ms',
        description: 'ประกาศกระทรวงฯ 2550 ข้อ 9: ต้องไม่เกิน 10 ms',
      }).thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Line)).thresholds(thresholds([[null, 'green'], [10, 'red']])),
    )
    .withPanel(timeseriesPanel('หน่วยความจำของ collector', [self(`max(${fd('klaiwatch', 'rss_bytes')}) AS "rss"`)], { unit: 'bytes', min: 0 }))
    .withRow(new dashboard.RowBuilder('ข้อมูลจราจรทางคอมพิวเตอร์ (traffic-log archive)'))
    .withPanel(
      timeseriesPanel(
        'รับเข้า (ต่อวินาที)',
        [
          traffic(
            `non_negative_derivative(last(${fd('traffic', 'syslog_received')}), 1s) AS "syslog", non_negative_derivative(last(${fd('traffic', 'flows_received')}), 1s) AS "flows", non_negative_derivative(last(${fd('traffic', 'stored')}), 1s) AS "stored"`,
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
            `last(${fd('traffic', 'udp_drops')}) AS "UDP dropped by the kernel", last(${fd('traffic', 'malformed')}) AS "malformed", last(${fd('traffic', 'write_failed')}) AS "write failed", last(${fd('traffic', 'flows_held_dropped')}) AS "flows without template", last(${fd('traffic', 'paused')}) AS "senders paused"`,
          ),
        ],
        { min: 0, span: 8, description: 'counters since the service started; anything but "senders paused" above 0 deserves a look' },
      ),
    )
    .withPanel(
      timeseriesPanel('ขนาดคลังข้อมูล', [traffic(`last(${fd('traffic', 'archive_bytes')}) AS "sealed segments", last(${fd('traffic', 'wal_bytes')}) AS "write-ahead log"`)], { unit: 'bytes', min: 0, span: 8 }),
    )
    .withPanel(
      timeseriesPanel('เวลา poll ต่ออุปกรณ์ (p95)', [new InfluxQL(`SELECT percentile(${fd('device', 'poll_ms')}, 95) FROM ${from('device')} WHERE $timeFilter GROUP BY time($__interval), ${tag('device', 'kind')} fill(null)`).alias('$tag_kind')], {
        unit: 'ms',
        min: 0,
      }),
    );
}

export const DASHBOARDS = {
  area: areaDashboard,
  school: schoolDashboard,
  device: deviceDashboard,
  dltv: dltvDashboard,
  evaluation: evaluationDashboard,
  health: healthDashboard,
} as const;
