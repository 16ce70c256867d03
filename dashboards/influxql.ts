// One typed InfluxQL query for the Grafana Foundation SDK, which ships query
// types for Prometheus, Loki and others but none for InfluxDB. The JSON it
// builds is what Grafana's own InfluxDB data source stores for a raw InfluxQL
// query (`rawQuery: true`). Measurement, field and tag names go through the
// helpers below, which accept only names the collector's schema module
// defines, so a renamed field breaks the type check, not a dashboard.
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import type * as common from '@grafana/grafana-foundation-sdk/common';
import { measurements, type FieldName, type MeasurementName } from '../config/measurements.ts';

export const DATASOURCE: common.DataSourceRef = { type: 'influxdb', uid: 'klaiwatch-influxdb' };

export type ResultFormat = 'time_series' | 'table';

export interface InfluxQLQuery extends cog.Dataquery {
  refId?: string;
  datasource?: common.DataSourceRef;
  hide?: boolean;
  /** The InfluxQL text, with Grafana's macros ($timeFilter, $__interval) and template variables. */
  query: string;
  rawQuery: true;
  resultFormat: ResultFormat;
  /** Series name pattern: $tag_<tag>, $col, $m. */
  alias?: string;
}

export class InfluxQL implements cog.Builder<cog.Dataquery> {
  private readonly internal: InfluxQLQuery;

  constructor(query: string) {
    this.internal = { datasource: DATASOURCE, query, rawQuery: true, resultFormat: 'time_series', _implementsDataqueryVariant() {} };
  }

  refId(refId: string): this {
    this.internal.refId = refId;
    return this;
  }

  table(): this {
    this.internal.resultFormat = 'table';
    return this;
  }

  alias(alias: string): this {
    this.internal.alias = alias;
    return this;
  }

  build(): InfluxQLQuery {
    return this.internal;
  }
}

type TagOf<M extends MeasurementName> = (typeof measurements)[M]['tags'][number];

const quote = (name: string) => `"${name.replace(/"/g, '\\"')}"`;

/** `"measurement"`, or `$rp."measurement"` when a retention-policy variable chooses between raw points and roll-ups. */
export function from<M extends MeasurementName>(m: M, rp?: string): string {
  return rp ? `${rp}.${quote(measurements[m].name)}` : quote(measurements[m].name);
}

/** A field of a measurement, quoted. */
export function field<M extends MeasurementName>(m: M, f: FieldName<M>): string {
  return quote(f);
}

/** A tag of a measurement, quoted. */
export function tag<M extends MeasurementName>(m: M, t: TagOf<M>): string {
  return quote(t);
}

/** `"tag" =~ /^$var$/`: matches the template variable's value(s), and everything when it is All. */
export function matches<M extends MeasurementName>(m: M, t: TagOf<M>, variable: string): string {
  return `${quote(t)} =~ /^$${variable}$/`;
}

/** `"tag" = 'value'` with the value escaped. */
export function equals<M extends MeasurementName>(m: M, t: TagOf<M>, value: string): string {
  return `${quote(t)} = '${value.replace(/'/g, "\\'")}'`;
}
