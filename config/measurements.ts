// The measurement schema: every measurement, tag and field klaiwatch writes to
// InfluxDB is named here and nowhere else. Profiles (config/profiles/*.yaml)
// may only map OIDs onto fields listed here, the InfluxDB set-up derives its
// continuous queries from it, and the dashboards read their names from it.
//
// Rules that keep the schema valid on InfluxDB 1.x, 2.x and 3.x:
// - a tag and a field never share a name;
// - a measurement's tag set is fixed: every point carries all its tags
//   (an absent value is written as "-"), so 3.x tables keep one shape.

export type FieldType = 'float' | 'integer' | 'string';
/** How a field is rolled up into 5-minute points; `none` keeps it raw only. */
export type Rollup = 'mean' | 'max' | 'min' | 'sum' | 'last' | 'none';

export interface FieldSpec {
  readonly type: FieldType;
  readonly unit: string;
  readonly rollup: Rollup;
  readonly description: string;
  /** Values no device can have (a percentage above 100, a negative rate): the poll drops them and counts them (klaiwatch values_dropped). */
  readonly min?: number;
  readonly max?: number;
}

export interface MeasurementSpec {
  readonly name: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly fields: Readonly<Record<string, FieldSpec>>;
}

/** Tags every per-device measurement carries, in this order. */
export const DEVICE_TAGS = ['school', 'school_name', 'district', 'device', 'kind'] as const;

const f = (type: FieldType, unit: string, rollup: Rollup, description: string, range?: { min?: number; max?: number }): FieldSpec => ({
  type,
  unit,
  rollup,
  description,
  ...range,
});

/** The fastest interface a school network or an office has (400 Gbit/s Ethernet); a speed or rate above it is a broken counter or agent. */
export const MAX_LINK_BPS = 400e9;
const PCT = { min: 0, max: 100 };
const RATE = { min: 0 };
const LINK = { min: 0, max: MAX_LINK_BPS };

export const measurements = {
  device: {
    name: 'device',
    description: 'One point per SNMP poll of a device: whether it answered, and what the poll cost.',
    tags: [...DEVICE_TAGS, 'profile'],
    fields: {
      snmp_up: f('integer', 'bool', 'mean', '1 when the device answered the poll, 0 when it did not'),
      poll_ms: f('float', 'ms', 'mean', 'wall time of the whole poll'),
      pdus: f('integer', 'short', 'mean', 'request PDUs sent'),
      timeouts: f('integer', 'short', 'sum', 'requests that timed out (after retries)'),
      error: f('string', 'string', 'none', 'why the poll failed, empty when it did not'),
      uptime_s: f('float', 's', 'last', 'sysUpTime of the agent', { min: 0 }),
      values_dropped: f('integer', 'short', 'sum', 'values the poll dropped as impossible (a percentage above 100, a speed above 400 Gbit/s, a negative rate) or outside the profile\'s valid range or map'),
      not_watched: f('string', 'string', 'none', 'checks the device\'s kind has that its profile cannot feed, each naming what is missing ("receiver lock not watched: profile generic gives no receiver.lock"); empty when every check is watched'),
    },
  },
  icmp: {
    name: 'icmp',
    description: 'One point per ICMP round per device: echo requests sent and answered, round-trip times.',
    tags: DEVICE_TAGS,
    fields: {
      icmp_up: f('integer', 'bool', 'mean', '1 when at least one echo reply came back'),
      sent: f('integer', 'short', 'sum', 'echo requests sent'),
      received: f('integer', 'short', 'sum', 'echo replies received'),
      loss_pct: f('float', 'percent', 'mean', 'share of requests without a reply'),
      rtt_min_ms: f('float', 'ms', 'min', 'shortest round trip'),
      rtt_avg_ms: f('float', 'ms', 'mean', 'mean round trip'),
      rtt_max_ms: f('float', 'ms', 'max', 'longest round trip'),
      jitter_ms: f('float', 'ms', 'mean', 'mean absolute difference between consecutive round trips'),
    },
  },
  interface: {
    name: 'interface',
    description: 'Per interface of a device (IF-MIB): traffic as rates computed in the collector, status, speed.',
    tags: [...DEVICE_TAGS, 'ifname'],
    fields: {
      in_bps: f('float', 'bps', 'mean', 'received bits per second', LINK),
      out_bps: f('float', 'bps', 'mean', 'sent bits per second', LINK),
      in_pps: f('float', 'pps', 'mean', 'received unicast packets per second', RATE),
      out_pps: f('float', 'pps', 'mean', 'sent unicast packets per second', RATE),
      in_errors_ps: f('float', 'short', 'mean', 'inbound errors per second', RATE),
      out_errors_ps: f('float', 'short', 'mean', 'outbound errors per second', RATE),
      in_discards_ps: f('float', 'short', 'mean', 'inbound discards per second', RATE),
      out_discards_ps: f('float', 'short', 'mean', 'outbound discards per second', RATE),
      oper_status: f('integer', 'none', 'last', 'ifOperStatus: 1 up, 2 down, 3 testing, 5 dormant, 7 lowerLayerDown'),
      admin_status: f('integer', 'none', 'last', 'ifAdminStatus: 1 up, 2 down, 3 testing'),
      speed_bps: f('float', 'bps', 'last', 'interface speed', LINK),
    },
  },
  system: {
    name: 'system',
    description: 'Whole-device figures: CPU, memory, load, temperature.',
    tags: DEVICE_TAGS,
    fields: {
      cpu_pct: f('float', 'percent', 'mean', 'CPU busy, mean over processors', PCT),
      mem_used_pct: f('float', 'percent', 'mean', 'memory in use', PCT),
      mem_total_bytes: f('float', 'bytes', 'last', 'memory installed', { min: 0 }),
      load1: f('float', 'short', 'mean', '1-minute load average', { min: 0 }),
      temperature_c: f('float', 'celsius', 'mean', 'board or chassis temperature (a modem\'s, a firewall\'s hottest sensor)', { min: -60, max: 200 }),
      voltage_v: f('float', 'volt', 'mean', 'supply voltage'),
      sessions: f('integer', 'short', 'mean', 'connections the firewall tracks (FortiGate fgSysSesCount, pf state table entries)', { min: 0 }),
    },
  },
  storage: {
    name: 'storage',
    description: 'Per storage area (HOST-RESOURCES hrStorageTable): disks and memory pools.',
    tags: [...DEVICE_TAGS, 'storage'],
    fields: {
      size_bytes: f('float', 'bytes', 'last', 'size', { min: 0 }),
      used_bytes: f('float', 'bytes', 'mean', 'space in use', { min: 0 }),
      used_pct: f('float', 'percent', 'mean', 'share in use', PCT),
      type: f('string', 'string', 'none', 'hrStorageType, an OID: 1.3.6.1.2.1.25.2.1.4 a fixed disk, .10 a network disk, .2 RAM, .3 virtual memory, .1 other (tmpfs, cgroup); disk checks judge only disks'),
    },
  },
  receiver: {
    name: 'receiver',
    description: 'Satellite receiver (DLTV) tuner: lock and signal.',
    tags: DEVICE_TAGS,
    fields: {
      lock: f('integer', 'bool', 'mean', '1 when the tuner (or a modem\'s receive side) is locked on the carrier', { min: 0, max: 1 }),
      signal_dbm: f('float', 'dBm', 'mean', 'input signal level'),
      cn_db: f('float', 'dB', 'mean', 'carrier-to-noise ratio'),
      ebno_db: f('float', 'dB', 'mean', 'energy per bit to noise density'),
      ber: f('float', 'short', 'mean', 'bit error rate indicator as the receiver reports it'),
      bitrate_bps: f('float', 'bps', 'mean', 'valid transport-stream bit rate', LINK),
      frequency_mhz: f('float', 'MHz', 'last', 'tuned satellite frequency', { min: 0 }),
      esno_db: f('float', 'dB', 'mean', 'energy per symbol to noise density (DVB-S2 Es/No)'),
      quality_pct: f('float', 'percent', 'mean', 'signal quality as the receiver rates it', PCT),
      tx_level_dbm: f('float', 'dBm', 'mean', 'transmit level of a two-way VSAT modem'),
      modem_state: f('integer', 'none', 'last', 'the modem\'s own state code as its MIB numbers it (see the profile for the names)'),
    },
  },
  sensor: {
    name: 'sensor',
    description: 'Per hardware sensor of a device (FortiGate fgHwSensorTable and the like): temperatures and alarms.',
    tags: [...DEVICE_TAGS, 'sensor'],
    fields: {
      temperature_c: f('float', 'celsius', 'mean', 'the sensor\'s temperature', { min: -60, max: 200 }),
      alarm: f('integer', 'bool', 'max', '1 when the device says the sensor is past its limit'),
    },
  },
  device_info: {
    name: 'device_info',
    description: 'What a device says it is, once per poll: description, name, model, firmware, serial (SNMPv2-MIB system group, ENTITY-MIB chassis row, vendor MIBs). Text, cut at 256 characters.',
    tags: DEVICE_TAGS,
    fields: {
      description: f('string', 'string', 'none', 'sysDescr'),
      sys_name: f('string', 'string', 'none', 'sysName, the name the device gives itself'),
      model: f('string', 'string', 'none', 'model (entPhysicalModelName or a vendor object)'),
      firmware: f('string', 'string', 'none', 'firmware or software version (entPhysicalSoftwareRev or a vendor object)'),
      serial: f('string', 'string', 'none', 'serial number (entPhysicalSerialNum)'),
      vendor: f('string', 'string', 'none', 'maker (entPhysicalMfgName)'),
    },
  },
  device_state: {
    name: 'device_state',
    description: 'One point per device per round: its judged state after confirmation, dependencies, schedule and maintenance.',
    tags: DEVICE_TAGS,
    fields: {
      state: f('string', 'string', 'none', 'unknown, up, down, unreachable or maintenance'),
      state_code: f('integer', 'none', 'last', '0 unknown, 1 up, 2 down, 3 unreachable, 4 maintenance'),
      up: f('integer', 'bool', 'mean', '1 up, 0 down or unreachable; absent while unknown or in maintenance, so its mean is availability'),
      judged: f('integer', 'bool', 'last', '0 outside the device\'s schedule (DLTV off the air)'),
      flapping: f('integer', 'bool', 'max', '1 while the state changes too often'),
    },
  },
  school_state: {
    name: 'school_state',
    description: 'One point per school per round: the school as a whole, with its map position, for the area overview. Written by the collector (instance) that owns the school.',
    tags: ['school', 'school_name', 'district', 'instance'],
    fields: {
      state: f('string', 'string', 'none', 'unknown, up, degraded (a device down, the school reachable), down (its router down), unreachable (behind a failed office link) or maintenance'),
      state_code: f('integer', 'none', 'last', '0 unknown, 1 up, 2 degraded, 3 down, 4 unreachable, 5 maintenance'),
      devices_up: f('integer', 'short', 'last', 'devices up'),
      devices_down: f('integer', 'short', 'last', 'devices down'),
      devices_unreachable: f('integer', 'short', 'last', 'devices unreachable behind a failed parent'),
      lat: f('float', 'degree', 'last', 'latitude from the inventory (absent when the school has no location)'),
      lon: f('float', 'degree', 'last', 'longitude from the inventory'),
    },
  },
  incident: {
    name: 'incident',
    description: 'Two points per outage (incident): one when it opens, at its start, and one when it ends, at its end, with its duration. The incidents themselves live in the state database; these points let dashboards count and time them.',
    tags: [...DEVICE_TAGS, 'check', 'outage'],
    fields: {
      incident_id: f('integer', 'none', 'none', 'the incident number in the state database'),
      opened: f('integer', 'short', 'sum', '1 on the point that opens the incident'),
      closed: f('integer', 'short', 'sum', '1 on the point that ends it'),
      duration_s: f('integer', 's', 'mean', 'how long it lasted, on the closing point: its mean is the mean time to repair'),
      cause: f('string', 'string', 'none', 'the device whose failure it was (itself, or the parent it sat behind)'),
    },
  },
  check_state: {
    name: 'check_state',
    description: 'One point per check of a device that answered, per round (SNMP agent, uplink, receiver lock, disks, memory, CPU): its state and what it saw, so the dashboards list the checks failing now.',
    tags: [...DEVICE_TAGS, 'check'],
    fields: {
      state: f('string', 'string', 'none', 'unknown, up, down or maintenance'),
      failing: f('integer', 'bool', 'none', '1 while the check has failed (state down), else 0'),
      since: f('integer', 'ms', 'none', 'when the check entered its state (Unix ms): a failure\'s start'),
      value: f('float', 'none', 'none', 'the value the check judged (a disk\'s used %, ifOperStatus); absent when it judged none (SNMP agent)'),
      detail: f('string', 'string', 'none', 'what the check saw ("used_pct /data = 93.1 (> 90)")'),
    },
  },
  area_state: {
    name: 'area_state',
    description: 'One point per round per collector (instance): its own devices in each state and its incidents open; summed over instances, the area.',
    tags: ['instance'],
    fields: {
      devices_up: f('integer', 'short', 'last', 'devices up'),
      devices_down: f('integer', 'short', 'last', 'devices down'),
      devices_unreachable: f('integer', 'short', 'last', 'devices unreachable behind a failed parent'),
      devices_unknown: f('integer', 'short', 'last', 'devices not judged (no data yet, or off schedule)'),
      devices_maintenance: f('integer', 'short', 'last', 'devices in a maintenance window'),
      incidents_open: f('integer', 'short', 'last', 'outages open now'),
      schools_up: f('integer', 'short', 'last', 'schools whose devices are all up'),
      schools_degraded: f('integer', 'short', 'last', 'schools reachable with a device down'),
      schools_down: f('integer', 'short', 'last', 'schools whose router is down'),
      schools_unreachable: f('integer', 'short', 'last', 'schools behind a failed office link'),
      schools_unknown: f('integer', 'short', 'last', 'schools not judged (no data yet, off schedule, maintenance)'),
    },
  },
  klaiwatch: {
    name: 'klaiwatch',
    description: "The collector's own figures, one point per round and per write cycle.",
    tags: ['instance', 'interval'],
    fields: {
      round_ms: f('float', 'ms', 'mean', 'wall time of the last polling round'),
      devices: f('integer', 'short', 'last', 'devices scheduled in the round'),
      devices_polled: f('integer', 'short', 'last', 'devices that answered SNMP in the round'),
      devices_failed: f('integer', 'short', 'last', 'devices whose SNMP poll failed in the round'),
      snmp_timeouts: f('integer', 'short', 'sum', 'SNMP requests that timed out in the round'),
      snmp_undecodable_reply: f('integer', 'short', 'sum', 'SNMP polls in the round that failed on replies that could not be decoded (undecodable_reply)'),
      snmp_truncated_reply: f('integer', 'short', 'sum', 'SNMP polls in the round that got a reply shorter than its own length says (truncated_reply)'),
      snmp_unmatched_reply: f('integer', 'short', 'sum', 'SNMP polls in the round whose replies answered no request of ours (unmatched_reply)'),
      snmp_invalid_reply: f('integer', 'short', 'sum', 'SNMP polls in the round with a decodable reply that does not answer the request (invalid_reply)'),
      snmp_wrong_community: f('integer', 'short', 'sum', 'SNMP polls in the round answered with another community (wrong_community)'),
      snmp_wrong_version: f('integer', 'short', 'sum', 'SNMP polls in the round answered in another SNMP version (wrong_version)'),
      snmp_auth_failed: f('integer', 'short', 'sum', 'SNMPv3 polls in the round refused by the security checks (auth_failed)'),
      snmp_agent_error: f('integer', 'short', 'sum', 'SNMP polls in the round the agent answered with an error status (agent_error)'),
      snmp_oid_not_increasing: f('integer', 'short', 'sum', 'SNMP polls in the round with a table walk whose OIDs did not increase (oid_not_increasing)'),
      snmp_wrong_type: f('integer', 'short', 'sum', 'SNMP polls in the round with a value of a type the profile cannot read (wrong_type)'),
      snmp_no_such_object: f('integer', 'short', 'sum', 'SNMP polls in the round answered noSuchObject where data was expected (no_such_object)'),
      snmp_no_such_instance: f('integer', 'short', 'sum', 'SNMP polls in the round answered noSuchInstance where data was expected (no_such_instance)'),
      snmp_end_of_mib_view: f('integer', 'short', 'sum', 'SNMP polls in the round answered endOfMibView where data was expected (end_of_mib_view)'),
      snmp_walk_too_long: f('integer', 'short', 'sum', 'SNMP polls in the round whose agent never ended a table walk (walk_too_long)'),
      snmp_local_error: f('integer', 'short', 'sum', "SNMP polls in the round that failed on the collector's own side: socket, profile (local_error)"),
      values_dropped: f('integer', 'short', 'sum', 'values dropped in the round as impossible (a percentage above 100, an interface speed above 400 Gbit/s, a negative rate) or outside a profile\'s valid range or enum map'),
      devices_not_watched: f('integer', 'short', 'last', 'devices with a check of their kind that their profile cannot feed (receiver lock, disks, memory): see /healthz not_watched'),
      icmp_hosts: f('integer', 'short', 'last', 'hosts probed over ICMP in the round'),
      icmp_down: f('integer', 'short', 'last', 'hosts that answered no echo request'),
      icmp_ms: f('float', 'ms', 'mean', 'wall time of the ICMP probe'),
      overruns: f('integer', 'short', 'sum', 'devices skipped because their previous poll had not finished'),
      points_written: f('integer', 'short', 'last', 'points accepted by InfluxDB since start'),
      points_spooled: f('integer', 'short', 'last', 'points written to the disk spool since start'),
      points_dropped: f('integer', 'short', 'last', 'points lost since start (spool full, or rejected by InfluxDB)'),
      spool_bytes: f('integer', 'bytes', 'last', 'bytes waiting in the disk spool'),
      write_errors: f('integer', 'short', 'last', 'failed write attempts since start'),
      clock_offset_ms: f('float', 'ms', 'mean', 'local clock minus NTP server time'),
      rss_bytes: f('integer', 'bytes', 'max', 'resident memory of the collector'),
    },
  },
  traffic: {
    name: 'traffic',
    description: "The traffic-log archive's own figures (counters since the service started), every 30 s.",
    tags: ['instance'],
    fields: {
      syslog_received: f('integer', 'short', 'last', 'syslog messages received'),
      flows_received: f('integer', 'short', 'last', 'NetFlow/IPFIX flow records received'),
      flow_datagrams: f('integer', 'short', 'last', 'NetFlow/IPFIX datagrams received'),
      stored: f('integer', 'short', 'last', 'records made durable in the write-ahead log'),
      write_failed: f('integer', 'short', 'last', 'records whose write failed (not acknowledged)'),
      malformed: f('integer', 'short', 'last', 'datagrams or frames that could not be read'),
      truncated: f('integer', 'short', 'last', 'messages cut at traffic.syslog.max_message'),
      discarded: f('integer', 'bytes', 'last', 'bytes dropped from messages cut at traffic.syslog.max_message (the rest of each)'),
      unparsed: f('integer', 'short', 'last', 'log lines no parser understood (kept raw)'),
      udp_drops: f('integer', 'short', 'last', 'datagrams the kernel dropped on the receivers\' UDP sockets'),
      paused: f('integer', 'short', 'last', 'times a TCP/TLS sender was paused while the disk caught up'),
      flows_held: f('integer', 'short', 'last', 'flow data sets waiting for their template'),
      flows_held_dropped: f('integer', 'short', 'last', 'flow data sets dropped: their template never came'),
      segments: f('integer', 'short', 'last', 'sealed segments in the archive'),
      archive_bytes: f('integer', 'bytes', 'last', 'bytes of sealed segments'),
      wal_bytes: f('integer', 'bytes', 'last', 'bytes in the write-ahead log (not yet sealed)'),
      seal_failures: f('integer', 'short', 'last', 'seals that failed (the records stay in the log)'),
      refused: f('integer', 'short', 'last', 'TCP/TLS connections refused (over traffic.syslog.max_connections or not on traffic.allow) and UDP datagrams from senders not on traffic.allow'),
      idle_closed: f('integer', 'short', 'last', 'TCP/TLS connections closed after traffic.syslog.idle_timeout without a byte'),
      connections: f('integer', 'short', 'last', 'TCP/TLS syslog connections open'),
      over_budget: f('integer', 'short', 'last', 'log lines whose parse took longer than traffic.parse_budget (stored as plain syslog records)'),
      worker_restarts: f('integer', 'short', 'last', 'parsing threads terminated (no answer in time, or crashed) and started again'),
      decode_lost: f('integer', 'short', 'last', 'flow datagrams lost with a terminated flow-decoding thread'),
      stored_raw: f('integer', 'short', 'last', 'log lines stored raw because their parsing thread was terminated'),
      queue_dropped: f('integer', 'short', 'last', 'UDP datagrams dropped: the queue to the parsing threads was full (traffic.max_queue)'),
      handshake_failed: f('integer', 'short', 'last', 'TLS connections closed because their handshake failed or did not end within traffic.syslog.tls.handshake_timeout'),
      sequence_errors: f('integer', 'short', 'last', 'gaps and jumps in NetFlow/IPFIX exporters\' sequence numbers'),
      lost_flows: f('integer', 'short', 'last', 'flows lost on the way, as the gaps in NetFlow v5 and IPFIX sequence numbers count them'),
      lost_datagrams: f('integer', 'short', 'last', 'NetFlow v9 datagrams lost on the way, as the gaps in their sequence numbers count them'),
      templates: f('integer', 'short', 'last', 'NetFlow v9/IPFIX templates known now'),
      templates_evicted: f('integer', 'short', 'last', 'templates dropped to make room for others (the decoder\'s limits)'),
      templates_expired: f('integer', 'short', 'last', 'templates dropped because their exporter had not sent them again in 6 hours'),
      held_bytes: f('integer', 'bytes', 'last', 'bytes of flow data sets waiting for their template'),
      held_expired: f('integer', 'short', 'last', 'flow data sets dropped after waiting traffic.flow.hold for their template'),
      held_failed: f('integer', 'short', 'last', 'held flow data sets that failed to decode once their template came'),
    },
  },
} as const satisfies Record<string, MeasurementSpec>;

export type MeasurementName = keyof typeof measurements;
export type FieldName<M extends MeasurementName> = keyof (typeof measurements)[M]['fields'] & string;

export function isMeasurementName(name: string): name is MeasurementName {
  return Object.hasOwn(measurements, name);
}

export function measurementSpec(name: MeasurementName): MeasurementSpec {
  return measurements[name];
}

/** Markdown "Metrics" section, generated so the README cannot drift from the data (`klaiwatch schema`). */
export function metricsMarkdown(): string {
  const out: string[] = [];
  for (const m of Object.values(measurements) as MeasurementSpec[]) {
    out.push(`### \`${m.name}\``, '', m.description, '', `Tags: ${m.tags.map((t) => `\`${t}\``).join(', ')}`, '');
    out.push('| field | type | unit | 5-min roll-up | meaning |', '| --- | --- | --- | --- | --- |');
    for (const [name, spec] of Object.entries(m.fields)) {
      out.push(`| \`${name}\` | ${spec.type} | ${spec.unit} | ${spec.rollup} | ${spec.description} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
