import { describe, it, expect } from 'vitest';
import { oidLess, compareOids } from '../../../collector/snmp/walk.ts';

describe('OID order', () => {
  it('compares arc by arc as numbers, a prefix before its children', () => {
    expect(oidLess('1.3.6.1.2', '1.3.6.1.10')).toBe(true);
    expect(oidLess('1.3.6.1.10', '1.3.6.1.2')).toBe(false);
    expect(oidLess('1.3.6', '1.3.6.1')).toBe(true);
    expect(oidLess('1.3.6.1', '1.3.6')).toBe(false);
    expect(oidLess('1.3.6.1', '1.3.6.1')).toBe(false);
    expect(oidLess('1.3.6.1.2.1.31.1.1.1.6.9', '1.3.6.1.2.1.31.1.1.1.6.10')).toBe(true);
    expect(oidLess('1.3.6.1.4.1.14988.1.1.3.10.0', '1.3.6.1.4.1.2021.4.5.0')).toBe(false);
  });

  it('sorts table indices as numbers (row order in points)', () => {
    expect(['10', '9', '1.4.10.0.0.1', '1.4.9.0.0.1', '2'].sort(compareOids)).toEqual(['1.4.9.0.0.1', '1.4.10.0.0.1', '2', '9', '10']);
    expect(compareOids('1.3.6', '1.3.6')).toBe(0);
  });
});
