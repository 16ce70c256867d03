// GET /v1/reports: the evaluation report of report/ (the very makeReport the
// CLI calls) as JSON, CSV or HTML, for a period and optionally one school.
// A school token's report is of its own school only: it is computed from a
// configuration holding that school alone, so the totals, the districts, the
// incidents and every row are that school's (no other school's figures are
// filtered out afterwards: they are never computed).
import { z } from 'zod';
import type { App } from '../../app.ts';
import { schoolScope } from '../../app.ts';
import type { ApiContext } from '../../context.ts';
import { ApiError } from '../../errors.ts';
import type { Config } from '../../../config/load.ts';
import { makeReport, ReportError } from '../../../report/report.ts';
import { PeriodError, BANGKOK_OFFSET_MS } from '../../../report/period.ts';
import { render, FORMATS } from '../../../report/render.ts';
import { ErrorZ, errors, SchoolCodeZ, scopedSchool } from './common.ts';

const PeriodZ = z
  .string()
  .min(1)
  .max(60)
  .regex(/^[A-Za-z0-9:./\- \u0E00-\u0E7F]+$/, 'a period is a month (2026-11 or 2569-11), "term", "term:2/2569", a fiscal year (fy2570) or a range (2026-11-01..2026-11-30)')
  .meta({ description: 'a month (2026-11 or 2569-11), "term", "term:2/2569", a fiscal year (fy2570) or a range of days (2026-11-01..2026-11-30); default the current month (Asia/Bangkok)' });

const ReportJsonZ = z.object({
  warnings: z.array(z.string()).meta({ description: 'what the figures lack (no InfluxDB: latency and loss left out; no rounds recorded ...)' }),
  report: z.looseObject({
    title: z.string(),
    totalLabel: z.string(),
    period: z.looseObject({ spec: z.string(), label: z.string(), from: z.number(), to: z.number() }),
    schools: z.array(z.looseObject({ code: z.string(), name: z.string() })),
  }),
});

/** The configuration of one school alone: the report computed from it holds nothing of any other. */
export function oneSchool(config: Config, code: string): Config {
  const schools = config.schools.filter((s) => s.code === code);
  const devices = config.devices.filter((d) => d.school.code === code);
  return { ...config, schools, devices, deviceById: new Map(devices.map((d) => [d.id, d])) };
}

const safeName = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60);

export async function register(app: App, ctx: ApiContext): Promise<void> {
  app.get(
    '/v1/reports',
    {
      config: { roles: ['officer', 'school', 'viewer'] },
      schema: {
        tags: ['views'],
        summary: 'The evaluation report (report/): JSON, CSV (Excel, Thai headings) or printable HTML',
        description: 'format=csv answers text/csv as an attachment, format=html a page (A4 landscape). A school token gets its own school\'s report only.',
        querystring: z.object({
          period: PeriodZ.optional(),
          school: SchoolCodeZ.optional(),
          format: z.enum(FORMATS).default('json'),
        }),
        response: { 200: ReportJsonZ, ...errors, 503: ErrorZ },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const school = scopedSchool(req, q.school, schoolScope(req));
      const site = school === undefined ? undefined : ctx.config.schools.find((s) => s.code === school);
      if (school !== undefined && !site) throw new ApiError(404, 'not_found', `querystring.school: no school ${school} in the inventory`);
      const now = ctx.now();
      const period = q.period ?? new Date(now + BANGKOK_OFFSET_MS).toISOString().slice(0, 7);
      const config = school === undefined ? ctx.config : oneSchool(ctx.config, school);
      let made: Awaited<ReturnType<typeof makeReport>>;
      try {
        made = await makeReport(config, { period, now, stateDb: ctx.stateDbFile });
      } catch (err) {
        if (err instanceof PeriodError || (err instanceof ReportError && err.message.startsWith('period '))) throw new ApiError(400, 'bad_request', `querystring.period: ${err.message}`);
        if (err instanceof ReportError) throw new ApiError(503, 'unavailable', 'no report yet: no collector has run with these settings (the state database does not exist)');
        throw err;
      }
      const { report, warnings } = made;
      if (site) report.totalLabel = `รวม (เฉพาะ${site.office ? '' : 'โรงเรียน'} ${site.name_th})`;
      const name = `klaiwatch-report-${safeName(report.period.spec)}${school !== undefined ? `-${safeName(school)}` : ''}`;
      if (q.format === 'csv') {
        return reply.header('content-disposition', `attachment; filename="${name}.csv"`).type('text/csv; charset=utf-8').send(render(report, 'csv') as never); // text, not the JSON schema's object
      }
      if (q.format === 'html') {
        return reply.header('content-disposition', `inline; filename="${name}.html"`).type('text/html; charset=utf-8').send(render(report, 'html') as never);
      }
      return { warnings, report: report as unknown as z.infer<typeof ReportJsonZ>['report'] };
    },
  );
}
