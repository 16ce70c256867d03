// `klaiwatch dashboards build --out DIR`: the dashboards' JSON and the two
// Grafana provisioning files (an InfluxDB data source speaking InfluxQL, and
// a file provider for the dashboards). Point Grafana's provisioning folder
// at DIR/provisioning, or copy its two files into /etc/grafana/provisioning.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import type { Settings } from '../config/load.ts';
import { DATASOURCE } from './influxql.ts';
import { DASHBOARDS } from './dashboards.ts';

export type DashboardName = keyof typeof DASHBOARDS;

export function buildDashboards(): Record<DashboardName, dashboard.Dashboard> {
  const out = {} as Record<DashboardName, dashboard.Dashboard>;
  for (const [name, make] of Object.entries(DASHBOARDS) as [DashboardName, () => dashboard.DashboardBuilder][]) {
    const d = make().build();
    // Stable panel ids, so links to a panel (viewPanel=N) survive a rebuild.
    d.panels?.forEach((p, i) => {
      p.id = i + 1;
    });
    out[name] = d;
  }
  return out;
}

/**
 * How Grafana gets a secret the settings name: Grafana expands `$VAR` and
 * `$__file{PATH}` in provisioning files, so the secret itself is never
 * copied into them. A literal secret in the settings is not copied either.
 */
function secretForGrafana(ref: string | undefined, fallbackEnv: string, notes: string[]): string | undefined {
  if (ref === undefined) return undefined;
  if (ref.startsWith('env:')) return `$${ref.slice(4)}`;
  if (ref.startsWith('file:')) return `$__file{${resolve(ref.slice(5))}}`;
  notes.push(`the InfluxDB secret is written literally in the settings; the data source reads it from the environment variable ${fallbackEnv} instead (set it for grafana-server)`);
  return `$${fallbackEnv}`;
}

export function datasourceProvisioning(influx: Settings['influx'], notes: string[]): Record<string, unknown> {
  const jsonData: Record<string, unknown> = { dbName: influx.database, httpMode: 'POST', version: 'InfluxQL', timeInterval: '30s' };
  const secureJsonData: Record<string, string> = {};
  const ds: Record<string, unknown> = { name: 'klaiwatch InfluxDB', uid: DATASOURCE.uid, type: 'influxdb', access: 'proxy', url: influx.url, isDefault: false, editable: false };
  if (influx.token) {
    // InfluxDB 2.x/3.x answer InfluxQL through their v1 compatibility API with a token header (and a DBRP mapping on 2.x).
    jsonData.httpHeaderName1 = 'Authorization';
    secureJsonData.httpHeaderValue1 = `Token ${secretForGrafana(influx.token, 'KLAIWATCH_INFLUX_TOKEN', notes)}`;
  } else if (influx.username) {
    ds.user = influx.username;
    const pw = secretForGrafana(influx.password, 'KLAIWATCH_INFLUX_PASSWORD', notes);
    if (pw) secureJsonData.password = pw;
  }
  ds.jsonData = jsonData;
  if (Object.keys(secureJsonData).length > 0) ds.secureJsonData = secureJsonData;
  return { apiVersion: 1, datasources: [ds] };
}

export interface BuildResult {
  files: string[];
  notes: string[];
}

export function writeDashboards(outDir: string, influx: Settings['influx']): BuildResult {
  const out = resolve(outDir);
  const dashDir = join(out, 'dashboards');
  const provDs = join(out, 'provisioning', 'datasources');
  const provDash = join(out, 'provisioning', 'dashboards');
  for (const d of [dashDir, provDs, provDash]) mkdirSync(d, { recursive: true });
  const files: string[] = [];
  const notes: string[] = [];
  for (const [name, json] of Object.entries(buildDashboards())) {
    const file = join(dashDir, `klaiwatch-${name}.json`);
    writeFileSync(file, JSON.stringify(json, null, 2) + '\n');
    files.push(file);
  }
  const header = '# Written by `klaiwatch dashboards build`; build again rather than edit.\n';
  const dsFile = join(provDs, 'klaiwatch.yaml');
  writeFileSync(dsFile, header + stringify(datasourceProvisioning(influx, notes), { lineWidth: 0 }));
  const providerFile = join(provDash, 'klaiwatch.yaml');
  writeFileSync(
    providerFile,
    header +
      stringify(
        {
          apiVersion: 1,
          providers: [{ name: 'klaiwatch', folder: 'klaiwatch', type: 'file', disableDeletion: true, allowUiUpdates: false, updateIntervalSeconds: 60, options: { path: dashDir, foldersFromFilesStructure: false } }],
        },
        { lineWidth: 0 },
      ),
  );
  files.push(dsFile, providerFile);
  return { files, notes };
}
