// What the dashboards share: the data source, state colours, template
// variables and small panel shapes, so that every dashboard says "down" in
// the same red and picks a school the same way.
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as table from '@grafana/grafana-foundation-sdk/table';
import { DATASOURCE, InfluxQL } from './influxql.ts';
import { STATES, SCHOOL_STATES } from '../stores/model.ts';
import type { Config } from '../config/load.ts';
import type { DeviceKind } from '../config/schema.ts';
import { CHECK_TH, KIND_TH, SNMP_ERROR_TH } from '../config/thai.ts';

const STATE_TEXT: Record<string, { th: string; color: string }> = {
  unknown: { th: 'ไม่ทราบ', color: 'text' },
  up: { th: 'ปกติ', color: 'green' },
  degraded: { th: 'บางอุปกรณ์ขัดข้อง', color: 'yellow' },
  down: { th: 'ขัดข้อง', color: 'red' },
  unreachable: { th: 'ติดต่อไม่ได้ (ต้นทางขัดข้อง)', color: 'orange' },
  maintenance: { th: 'ปิดปรับปรุง', color: 'blue' },
};

function codeMapping(states: readonly string[]): dashboard.ValueMapping[] {
  const options: Record<string, dashboard.ValueMappingResult> = {};
  states.forEach((s, i) => {
    options[String(i)] = { text: STATE_TEXT[s]!.th, color: STATE_TEXT[s]!.color, index: i };
  });
  return [{ type: dashboard.MappingType.ValueToText, options }];
}

/** Value mappings for `device_state.state_code`. */
export const deviceStateMapping = codeMapping(STATES);
/** Value mappings for `school_state.state_code`. */
export const schoolStateMapping = codeMapping(SCHOOL_STATES);
/** Value mappings for the textual `state` fields. */
export const stateTextMapping: dashboard.ValueMapping[] = [
  {
    type: dashboard.MappingType.ValueToText,
    options: Object.fromEntries(Object.entries(STATE_TEXT).map(([k, v], i) => [k, { text: v.th, color: v.color, index: i }])),
  },
];

export function thresholds(steps: [number | null, string][]): dashboard.ThresholdsConfigBuilder {
  return new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps(steps.map(([value, color]) => ({ value, color })));
}

/** Green at 99 % and over, yellow from 95 %, red under: the office's availability bands. */
export const availabilityThresholds = () => thresholds([[null, 'red'], [95, 'yellow'], [99, 'green']]);

const byThresholds = () => new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.Thresholds);

/** What the dashboards are built for: the inventory's schools and devices (`dashboards build` has the settings). */
export interface DashboardArea {
  schools: readonly { code: string; name_th: string; office: boolean }[];
  devices: readonly { id: string; kind: DeviceKind; uplink_if?: string | undefined; school: { code: string } }[];
  /** The longest polling interval, ms: a check not seen in three of them is not "now". */
  maxIntervalMs: number;
}

export function areaOf(config: Pick<Config, 'schools' | 'devices' | 'settings'>): DashboardArea {
  const p = config.settings.polling;
  return { schools: config.schools, devices: config.devices, maxIntervalMs: Math.max(p.interval, ...Object.values(p.intervals).filter((x): x is number => typeof x === 'number')) };
}

/** No inventory: the school picker lists codes from the state points, and no device names an uplink. */
export const NO_AREA: DashboardArea = { schools: [], devices: [], maxIntervalMs: 60_000 };

/**
 * The school picker: the text is the school's Thai name, the value its code
 * (what the tags carry). InfluxQL's SHOW TAG VALUES gives no name/value
 * pairs, so it is a custom variable built from the inventory; without one,
 * the codes from the state points.
 */
export function schoolVariable(area: DashboardArea, opts: { all?: boolean } = {}): dashboard.CustomVariableBuilder | dashboard.QueryVariableBuilder {
  if (area.schools.length === 0) {
    const v = new dashboard.QueryVariableBuilder('school')
      .label('โรงเรียน (รหัส)')
      .datasource(DATASOURCE)
      .query('SHOW TAG VALUES FROM "school_state" WITH KEY = "school"')
      .refresh(dashboard.VariableRefresh.OnDashboardLoad)
      .sort(dashboard.VariableSort.AlphabeticalAsc);
    if (opts.all) v.includeAll(true).allValue('.*').multi(true);
    return v;
  }
  // Grafana splits a custom variable's values on "," and a pair on " : ".
  const text = (name: string) => name.replace(/,/g, ' ').replace(/ : /g, ' - ').trim();
  const schools = [...area.schools].sort((a, b) => Number(a.office) - Number(b.office) || a.name_th.localeCompare(b.name_th, 'th'));
  const options: dashboard.VariableOption[] = schools.map((s) => ({ text: text(s.name_th), value: s.code }));
  const v = new dashboard.CustomVariableBuilder('school')
    .label('โรงเรียน')
    .values(options.map((o) => `${o.text} : ${o.value}`).join(','))
    .options(options)
    .current(opts.all ? { text: ['ทั้งหมด'], value: ['$__all'] } : { ...options[0]!, selected: true });
  if (opts.all) v.includeAll(true).allValue('.*').multi(true);
  return v;
}

/** A device of the chosen school, of the given kind. */
export function deviceVariable(kind?: DeviceKind): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder('device')
    .label('อุปกรณ์')
    .datasource(DATASOURCE)
    .query(`SHOW TAG VALUES FROM "device_state" WITH KEY = "device" WHERE "school" =~ /^$school$/${kind ? ` AND "kind" = '${kind}'` : ''}`)
    .refresh(dashboard.VariableRefresh.OnDashboardLoad)
    .sort(dashboard.VariableSort.AlphabeticalAsc);
}

/** The device dashboard of a kind: one per kind, so a device's dashboard has only the panels its kind fills. */
export const deviceUid = (kind: DeviceKind | '${__data.fields.kind_code}') => `klaiwatch-device-${kind}`;
/**
 * The column a device link reads its kind from: a hidden copy of the `kind`
 * tag without a value mapping (`"kind" AS "kind_code"` in the query). Grafana
 * puts a field's display value into `${__data.fields.NAME}`, so the Thai
 * mapping on the visible `kind` column would make the link point at a
 * dashboard that does not exist (klaiwatch-device-เราเตอร์).
 */
export const KIND_CODE = 'kind_code';
export const SCHOOL_UID = 'klaiwatch-school';

/** A data link to the school dashboard with the school of the row (field `school`) or the dashboard's own. */
export function schoolLink(from: 'row' | 'variable' = 'row'): { title: string; url: string } {
  const school = from === 'row' ? '${__data.fields.school}' : '${school}';
  return { title: 'เปิดแดชบอร์ดของโรงเรียนนี้', url: `/d/${SCHOOL_UID}/?var-school=${school}&\${__url_time_range}` };
}

/** A data link to the device dashboard of the row's device (fields `device`, `kind_code` (KIND_CODE, hidden and unmapped), and `school` or the dashboard's school). */
export function deviceLink(school: 'row' | 'variable' = 'row'): { title: string; url: string } {
  const s = school === 'row' ? '${__data.fields.school}' : '${school}';
  return { title: 'เปิดแดชบอร์ดของอุปกรณ์นี้', url: `/d/${deviceUid('${__data.fields.kind_code}')}/?var-school=${s}&var-device=\${__data.fields.device}&\${__url_time_range}` };
}

/** Raw points (30 days) or 5-minute roll-ups (2 years), for ranges longer than the raw retention. */
export function rpVariable(): dashboard.CustomVariableBuilder {
  return new dashboard.CustomVariableBuilder('rp')
    .label('ข้อมูล')
    .description('raw: every poll, kept 30 days. rollup_5m: 5-minute means, kept 2 years; choose it for a term or a fiscal year.')
    .values('raw,rollup_5m')
    .current({ text: 'raw', value: 'raw' });
}

export function statPanel(title: string, query: InfluxQL, opts: { unit?: string; thresholds?: dashboard.ThresholdsConfigBuilder; mappings?: dashboard.ValueMapping[]; span?: number } = {}): stat.PanelBuilder {
  const p = new stat.PanelBuilder()
    .title(title)
    .datasource(DATASOURCE)
    .withTarget(query.refId('A'))
    .height(4)
    .span(opts.span ?? 4)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .graphMode(common.BigValueGraphMode.None)
    .colorMode(common.BigValueColorMode.Background);
  if (opts.unit) p.unit(opts.unit);
  if (opts.thresholds) p.thresholds(opts.thresholds).colorScheme(byThresholds());
  if (opts.mappings) p.mappings(opts.mappings);
  return p;
}

export function timeseriesPanel(
  title: string,
  queries: InfluxQL[],
  opts: { unit?: string; span?: number; height?: number; min?: number; max?: number; description?: string; legend?: 'list' | 'table' } = {},
): timeseries.PanelBuilder {
  const p = new timeseries.PanelBuilder().title(title).datasource(DATASOURCE).height(opts.height ?? 8).span(opts.span ?? 12);
  queries.forEach((q, i) => p.withTarget(q.refId(String.fromCharCode(65 + i))));
  if (opts.unit) p.unit(opts.unit);
  if (opts.min !== undefined) p.min(opts.min);
  if (opts.max !== undefined) p.max(opts.max);
  if (opts.description) p.description(opts.description);
  // Where many lines share a panel, a table legend names each with its last, highest and mean value.
  const legend = new common.VizLegendOptionsBuilder().showLegend(true).placement(common.LegendPlacement.Bottom);
  if ((opts.legend ?? 'table') === 'table') legend.displayMode(common.LegendDisplayMode.Table).calcs(['lastNotNull', 'max', 'mean']);
  else legend.displayMode(common.LegendDisplayMode.List).calcs([]);
  p.legend(legend);
  return p;
}

/** A column's Thai name, its unit and whether it is shown (a hidden column still feeds the data links). */
export interface Column {
  th?: string;
  unit?: string;
  decimals?: number;
  hidden?: boolean;
  links?: { title: string; url: string }[];
  mappings?: dashboard.ValueMapping[];
}

/** Column names the tables share, in Thai. */
export const COLUMN_TH: Record<string, string> = {
  school: 'รหัสโรงเรียน',
  school_name: 'โรงเรียน',
  device: 'อุปกรณ์',
  kind: 'ประเภท',
  kind_code: 'รหัสประเภท',
  check: 'ปัญหา',
  since: 'ตั้งแต่',
  value: 'ค่าที่วัดได้',
  detail: 'รายละเอียด',
  state: 'สถานะ',
  ifname: 'พอร์ต',
};

export function tablePanel(
  title: string,
  query: InfluxQL,
  opts: { span?: number; height?: number; sortBy?: { displayName: string; desc: boolean }; description?: string; columns?: Record<string, Column>; keepTime?: boolean } = {},
): table.PanelBuilder {
  const p = new table.PanelBuilder()
    .title(title)
    .datasource(DATASOURCE)
    .withTarget(query.table().refId('A'))
    .height(opts.height ?? 8)
    .span(opts.span ?? 12);
  // InfluxQL tables carry a time column that says nothing here (unless it is the day of a per-day table).
  if (opts.keepTime) p.overrideByName('Time', [{ id: 'displayName', value: 'วันที่' }, { id: 'unit', value: 'time:YYYY-MM-DD' }]);
  else p.withTransformation({ id: 'organize', options: { excludeByName: { Time: true } } });
  for (const [name, c] of Object.entries(opts.columns ?? {})) {
    const props: dashboard.DynamicConfigValue[] = [];
    const th = c.th ?? COLUMN_TH[name];
    if (th) props.push({ id: 'displayName', value: th });
    if (c.unit) props.push({ id: 'unit', value: c.unit });
    if (c.decimals !== undefined) props.push({ id: 'decimals', value: c.decimals });
    if (c.hidden) props.push({ id: 'custom.hidden', value: true });
    if (c.links) props.push({ id: 'links', value: c.links });
    if (c.mappings) props.push({ id: 'mappings', value: c.mappings });
    if (props.length > 0) p.overrideByName(name, props);
  }
  if (opts.sortBy) p.sortBy([new common.TableSortByFieldStateBuilder().displayName(opts.sortBy.displayName).desc(opts.sortBy.desc)]);
  if (opts.description) p.description(opts.description);
  return p;
}

/** A check's name in Thai (config/thai.ts), with the row it is about: "storage.used_pct:/data" → "พื้นที่ดิสก์ใกล้เต็ม (/data)". */
export const checkMapping: dashboard.ValueMapping[] = Object.entries(CHECK_TH).flatMap(([name, t], i) => {
  const re = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return [
    { type: dashboard.MappingType.RegexToText, options: { pattern: `^${re}$`, result: { text: t.title, index: 2 * i } } },
    { type: dashboard.MappingType.RegexToText, options: { pattern: `^${re}:(.*)$`, result: { text: `${t.title} ($1)`, index: 2 * i + 1 } } },
  ];
});

/**
 * What a failing check saw (`check_state.detail`, written in English by
 * collector/alerts/checks.ts) as a Thai phrase, with the technical text kept
 * in brackets for the officer: "used_pct / = 93.1 (> 90)" → "วัดได้ 93.1
 * สูงกว่าเกณฑ์ (used_pct / = 93.1 (> 90))"; an SNMP error by its stable code
 * (the mail's phrases, config/thai.ts): "get scalars: timeout after
 * 2 tries of 1000 ms" → "ส่งคำขอไปแล้วไม่มีคำตอบกลับภายในเวลาที่กำหนด (get
 * scalars: timeout ...)". Grafana tries them in index order, whole-value
 * anchored, and puts $N of the match into the text.
 */
export const detailMapping: dashboard.ValueMapping[] = [
  ['^((.+) ifOperStatus (\\d+))$', 'พอร์ต $2 ไม่ทำงาน ($1)'],
  ['^(\\S+(?: .*)? = (-?[\\d.]+) \\(> [-\\d.]+\\))$', 'วัดได้ $2 สูงกว่าเกณฑ์ ($1)'],
  ['^(\\S+(?: .*)? = (-?[\\d.]+) \\(< [-\\d.]+\\))$', 'วัดได้ $2 ต่ำกว่าเกณฑ์ ($1)'],
  ...Object.entries(SNMP_ERROR_TH).map(([code, th]): [string, string] => [`^(.*\\b${code}\\b.*)$`, `SNMP: ${th} ($1)`]),
  ['^(SNMP does not answer)$', 'SNMP ไม่ตอบ ($1)'],
].map(([pattern, text], index) => ({ type: dashboard.MappingType.RegexToText, options: { pattern: pattern!, result: { text: text!, index } } }));

/** A device kind in Thai. */
export const kindMapping: dashboard.ValueMapping[] = [
  { type: dashboard.MappingType.ValueToText, options: Object.fromEntries(Object.entries(KIND_TH).map(([k, th], i) => [k, { text: th, index: i }])) },
];
