// The views of issue 17: the area's state, schools, devices, recent metrics,
// problems, incidents and the evaluation report, read from the stores the
// collector writes (state database, InfluxDB) and the inventory. Never a
// credential; a school token sees its own school only.
import type { App } from '../app.ts';
import type { ApiContext } from '../context.ts';
import { StateView } from './views/snapshot.ts';
import { register as status } from './views/status.ts';
import { register as devices } from './views/devices.ts';
import { register as incidents } from './views/incidents.ts';
import { register as reports } from './views/reports.ts';

export async function register(app: App, ctx: ApiContext): Promise<void> {
  const view = new StateView(ctx);
  await status(app, ctx, view);
  await devices(app, ctx, view);
  await incidents(app, ctx, view);
  await reports(app, ctx);
}
