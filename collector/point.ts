// A point on its way to InfluxDB, and the tags that place it on the map.
import type { Device } from '../config/load.ts';
import type { MeasurementName } from '../config/measurements.ts';

export interface Point {
  measurement: MeasurementName;
  tags: Record<string, string>;
  fields: Record<string, number | string>;
  /** Unix time in milliseconds. */
  time: number;
}

/** The tags every per-device measurement carries (schema.DEVICE_TAGS). */
export function deviceTags(device: Device): Record<string, string> {
  return {
    school: device.school.code,
    school_name: device.school.name_th,
    district: device.school.district,
    device: device.id,
    kind: device.kind,
  };
}
