import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { measurements, metricsMarkdown } from '../../config/measurements.ts';

describe('measurement schema', () => {
  it('the README Metrics section is the one the schema module generates (regenerate with `klaiwatch schema`)', () => {
    const readme = readFileSync('README.md', 'utf8');
    const section = /<!-- metrics:begin -->\n([\s\S]*)<!-- metrics:end -->/.exec(readme)?.[1];
    expect(section).toBe(metricsMarkdown());
  });

  it('never gives a tag and a field the same name (InfluxDB 3 refuses it)', () => {
    for (const m of Object.values(measurements)) {
      const clash = m.tags.filter((t) => Object.hasOwn(m.fields, t));
      expect(clash, m.name).toEqual([]);
    }
  });
});
