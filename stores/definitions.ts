// What an "outage", a "check" and a "repair time" are, spelled once: the
// report (report/figures.ts) and the evaluation dashboard
// (dashboards/dashboards.ts) both count with these, so one question gets one
// answer. The collector writes each incident twice: a row in the state
// database (check_name '' for the device itself) and `incident` points in
// InfluxDB (tag check '-' for the device itself, tag outage = the state).
import type { Incident } from './state.ts';

/** An outage incident: the device itself down; not a failed check, not unreachable behind a failed parent. */
export const isOutage = (i: Pick<Incident, 'check' | 'state'>): boolean => i.check === '' && i.state === 'down';

/** Unreachable behind a failed parent: the parent's outage, not this device's. */
export const isUpstream = (i: Pick<Incident, 'check' | 'state'>): boolean => i.check === '' && i.state === 'unreachable';

/** A failed check (receiver lock, disk, uplink, SNMP agent) of a device that is itself up: its own section, never an outage. */
export const isCheck = (i: Pick<Incident, 'check'>): boolean => i.check !== '';

/**
 * Repair time: the whole duration of an incident that ended, from its start to
 * its end, in seconds (also the time it spent before the period, while no
 * collector ran, or in a maintenance window laid over it: a window does not
 * end an outage, stores/state.ts keeps it open until the device is seen good).
 */
export const repairTimeS = (i: Pick<Incident, 'startedAt' | 'endedAt'>): number | null => (i.endedAt === null ? null : (i.endedAt - i.startedAt) / 1000);

/** Open at `t`: begun before it and not ended by it. */
export const openAt = (i: Pick<Incident, 'startedAt' | 'endedAt'>, t: number): boolean => i.startedAt < t && (i.endedAt === null || i.endedAt > t);

/** The `incident` points of an outage (isOutage), as an InfluxQL condition: the device itself ('-': no check) and down. */
export const OUTAGE_INFLUXQL = `"check" = '-' AND "outage" = 'down'`;

/** The `incident` points of failed checks, as an InfluxQL condition. */
export const CHECK_INFLUXQL = `"check" != '-'`;

/**
 * The rules in words (README and the printed page say the same):
 * - outages are counted in the period in which they began, and only if they
 *   touched observed time; repair time is counted for those that ended in
 *   the period (the mean over them: MTTR).
 * - a maintenance window begun during an outage neither ends nor splits it:
 *   one incident, open until the device is seen good (down → maintenance →
 *   down is one outage); the window's time is not downtime (it is taken out
 *   of observed time) but is in the repair time.
 * - the dashboard counts the `incident` points with OUTAGE_INFLUXQL (begun:
 *   `opened`, repair: `duration_s` of the closing point); it cannot tell
 *   observed time, so an outage wholly outside scheduled or observed time
 *   is in its count and not in the report's.
 */
export const OUTAGE_RULE = 'outage = the device itself down (check_name = \'\', state = \'down\'); counted in the period it began, if it touched observed time; repair time = its whole duration, for those that ended in the period; a maintenance window neither ends nor splits an outage';
