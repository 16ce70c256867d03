// (filled by the maintenance work of issue 17)
import type { App } from '../app.ts';
import type { ApiContext } from '../context.ts';

export async function register(_app: App, _ctx: ApiContext): Promise<void> {}
