// `klaiwatch dashboards build --out DIR`: the dashboards' JSON and the two
// Grafana provisioning files (an InfluxDB data source speaking InfluxQL, and
// a file provider for the dashboards). Point Grafana's provisioning folder
// at DIR/provisioning, or copy its two files into /etc/grafana/provisioning.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import type { Settings } from '../config/load.ts';
import { checkOutputPath } from '../config/preflight.ts';
import { DATASOURCE } from './influxql.ts';
import { dashboardsFor } from './dashboards.ts';
import { NO_AREA, type DashboardArea } from './panels.ts';

export const GRID_COLUMNS = 24;

/**
 * Lays panels out left to right, top to bottom, in the order they were
 * added: a panel that would pass column 24 starts the next line, a row
 * takes a line of its own, and the panels of a collapsed row follow it.
 * (The SDK's own layout lets a panel pass the right edge.)
 */
export function layout(panels: dashboard.Dashboard['panels']): void {
  let x = 0;
  let y = 0;
  let lineHeight = 0;
  const place = (p: { gridPos?: dashboard.GridPos; type?: string }) => {
    const g = p.gridPos ?? { x: 0, y: 0, w: 12, h: 8 };
    const w = Math.min(Math.max(1, g.w), GRID_COLUMNS);
    if (p.type === 'row' || x + w > GRID_COLUMNS) {
      y += lineHeight;
      x = 0;
      lineHeight = 0;
    }
    p.gridPos = { ...g, x, y, w, h: p.type === 'row' ? 1 : g.h };
    if (p.type === 'row') {
      y += 1;
      return;
    }
    x += w;
    lineHeight = Math.max(lineHeight, p.gridPos.h);
  };
  for (const p of panels ?? []) {
    place(p as { gridPos?: dashboard.GridPos; type?: string });
    for (const inner of (p as dashboard.RowPanel).panels ?? []) place(inner as { gridPos?: dashboard.GridPos; type?: string });
  }
}

export function buildDashboards(area: DashboardArea = NO_AREA): Record<string, dashboard.Dashboard> {
  const out: Record<string, dashboard.Dashboard> = {};
  for (const [name, make] of Object.entries(dashboardsFor(area))) {
    const d = make().build();
    layout(d.panels);
    // Stable panel ids (those in collapsed rows too), so links to a panel (viewPanel=N) survive a rebuild.
    let id = 0;
    for (const p of d.panels ?? []) {
      p.id = ++id;
      for (const inner of (p as dashboard.RowPanel).panels ?? []) inner.id = ++id;
    }
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

/** `area`: the inventory the pickers and the uplink panels are built from (areaOf(config)); without it the pickers show codes and no uplink is known. */
export function writeDashboards(outDir: string, influx: Settings['influx'], area: DashboardArea = NO_AREA): BuildResult {
  // Before any mkdir: a recursive one under /proc spins forever instead of failing.
  checkOutputPath('--out', outDir, 'folder');
  const out = resolve(outDir);
  const dashDir = join(out, 'dashboards');
  const provDs = join(out, 'provisioning', 'datasources');
  const provDash = join(out, 'provisioning', 'dashboards');
  for (const d of [dashDir, provDs, provDash]) mkdirSync(d, { recursive: true });
  const files: string[] = [];
  const notes: string[] = [];
  for (const [name, json] of Object.entries(buildDashboards(area))) {
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
