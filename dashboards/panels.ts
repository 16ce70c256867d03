// What the dashboards share: the data source, state colours, template
// variables and small panel shapes, so that every dashboard says "down" in
// the same red and picks a school the same way.
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as table from '@grafana/grafana-foundation-sdk/table';
import { DATASOURCE, InfluxQL } from './influxql.ts';
import { STATES, SCHOOL_STATES } from '../collector/alerts/state.ts';

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

/** The school picker: school codes from the state points (the codes are what the tags carry). */
export function schoolVariable(opts: { all?: boolean } = {}): dashboard.QueryVariableBuilder {
  const v = new dashboard.QueryVariableBuilder('school')
    .label('โรงเรียน (รหัส)')
    .datasource(DATASOURCE)
    .query('SHOW TAG VALUES FROM "school_state" WITH KEY = "school"')
    .refresh(dashboard.VariableRefresh.OnDashboardLoad)
    .sort(dashboard.VariableSort.AlphabeticalAsc);
  if (opts.all) v.includeAll(true).allValue('.*').multi(true);
  return v;
}

/** A device of the chosen school. */
export function deviceVariable(): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder('device')
    .label('อุปกรณ์')
    .datasource(DATASOURCE)
    .query('SHOW TAG VALUES FROM "device_state" WITH KEY = "device" WHERE "school" =~ /^$school$/')
    .refresh(dashboard.VariableRefresh.OnDashboardLoad)
    .sort(dashboard.VariableSort.AlphabeticalAsc);
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

export function timeseriesPanel(title: string, queries: InfluxQL[], opts: { unit?: string; span?: number; height?: number; min?: number; max?: number; description?: string } = {}): timeseries.PanelBuilder {
  const p = new timeseries.PanelBuilder().title(title).datasource(DATASOURCE).height(opts.height ?? 8).span(opts.span ?? 12);
  queries.forEach((q, i) => p.withTarget(q.refId(String.fromCharCode(65 + i))));
  if (opts.unit) p.unit(opts.unit);
  if (opts.min !== undefined) p.min(opts.min);
  if (opts.max !== undefined) p.max(opts.max);
  if (opts.description) p.description(opts.description);
  return p;
}

export function tablePanel(title: string, query: InfluxQL, opts: { span?: number; height?: number; sortBy?: { displayName: string; desc: boolean }; description?: string } = {}): table.PanelBuilder {
  const p = new table.PanelBuilder()
    .title(title)
    .datasource(DATASOURCE)
    .withTarget(query.table().refId('A'))
    .height(opts.height ?? 8)
    .span(opts.span ?? 12)
    // InfluxQL tables carry a time column that says nothing here.
    .withTransformation({ id: 'organize', options: { excludeByName: { Time: true } } });
  if (opts.sortBy) p.sortBy([new common.TableSortByFieldStateBuilder().displayName(opts.sortBy.displayName).desc(opts.sortBy.desc)]);
  if (opts.description) p.description(opts.description);
  return p;
}
