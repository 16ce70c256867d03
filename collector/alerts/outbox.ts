// The persistent outbox: every notice is a row in SQLite before anything is
// sent, and is marked sent only after the SMTP server accepted it. While
// SMTP is down, messages wait and are retried with backoff; after a restart
// the pending ones go out. Each row carries a fixed Message-ID, so in the one
// case a message can go twice (accepted, then the collector died before it
// marked the row) the receiving side sees the same message again.
// Threads: the Message-ID of each notice that announced an incident is kept
// with the incident (table incident_mail, per recipient list); the notice
// that says it is over carries In-Reply-To and References to it, so a mail
// client shows the recovery under the failure.
import type { DatabaseSync } from 'node:sqlite';
import { hostname } from 'node:os';
import type { Transporter } from 'nodemailer';
import type { Logger } from '../../config/log.ts';
import type { MailInput } from '../../config/schema.ts';
import type { MailAuth } from '../../config/load.ts';
import { smtpTransportOptions } from '../../config/smtp.ts';
import type { Notice } from './notices.ts';

export interface OutboxRow {
  id: number;
  createdAt: number;
  to: string[];
  subject: string;
  status: 'pending' | 'sent';
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  sentAt: number | null;
  messageId: string;
  school: string;
  incidents: number[];
  /** The announcing mail(s) this one answers (a recovery), oldest first; empty when it starts a thread. */
  references: string[];
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT, created_at INTEGER NOT NULL, recipients TEXT NOT NULL, subject TEXT NOT NULL,
  text TEXT NOT NULL, html TEXT NOT NULL, school TEXT NOT NULL, incidents TEXT NOT NULL, message_id TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
  last_error TEXT, sent_at INTEGER, response TEXT)`;

/** Which message told whom of an incident: the recovery replies to it. */
const THREADS = `CREATE TABLE IF NOT EXISTS incident_mail (
  incident INTEGER NOT NULL, recipients TEXT NOT NULL, message_id TEXT NOT NULL, outbox_id INTEGER NOT NULL)`;
const THREADS_INDEX = 'CREATE INDEX IF NOT EXISTS incident_mail_incident ON incident_mail (incident)';

/** The recipient list as one key: the same people in any order. */
const recipientsKey = (to: readonly string[]) => JSON.stringify([...to].map((a) => a.toLowerCase()).sort());
/** At most this many References (RFC 5322 lets it grow; a recovery of a whole area should not carry hundreds). */
const MAX_REFERENCES = 20;

/** A nodemailer transport for the settings (nodemailer is loaded only where mail is configured). */
export async function createTransport(mail: MailInput, auth: MailAuth): Promise<Transporter> {
  const { default: nodemailer } = await import('nodemailer');
  return nodemailer.createTransport(smtpTransportOptions(mail.smtp, auth.password?.reveal()));
}

/** In-Reply-To the latest mail answered, References all of them (RFC 5322 3.6.4). */
function threadHeaders(refs: readonly string[]): { inReplyTo?: string; references?: string[] } {
  return refs.length > 0 ? { inReplyTo: refs[refs.length - 1]!, references: [...refs] } : {};
}

export class Outbox {
  private readonly db: DatabaseSync;
  private readonly transport: Transporter;
  private readonly mail: MailInput;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  /** `db` is the state database (StateStore.db): notices and the incidents they tell of live in one file. */
  constructor(db: DatabaseSync, mail: MailInput, transport: Transporter, log: Logger) {
    this.db = db;
    this.db.exec(SCHEMA);
    this.db.exec(THREADS);
    this.db.exec(THREADS_INDEX);
    // An outbox from before threads: the column is added, its rows answer nothing.
    const cols = new Set((this.db.prepare('PRAGMA table_info(outbox)').all() as { name: string }[]).map((c) => c.name));
    if (!cols.has('refs')) this.db.exec("ALTER TABLE outbox ADD COLUMN refs TEXT NOT NULL DEFAULT '[]'");
    this.mail = mail;
    this.transport = transport;
    this.log = log;
  }

  /** Writes the notices; they are sent by the next drain. */
  enqueue(notices: readonly Notice[], now = Date.now()): number[] {
    const insert = this.db.prepare('INSERT INTO outbox (created_at, recipients, subject, text, html, school, incidents, message_id, next_attempt_at, refs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id');
    const announced = this.db.prepare('SELECT message_id FROM incident_mail WHERE incident = ? AND recipients = ? ORDER BY outbox_id');
    const remember = this.db.prepare('INSERT INTO incident_mail (incident, recipients, message_id, outbox_id) VALUES (?, ?, ?, ?)');
    const ids: number[] = [];
    this.db.exec('BEGIN');
    try {
      for (const n of notices) {
        const messageId = `<klaiwatch.${now}.${ids.length}.${Math.random().toString(36).slice(2, 10)}@${hostname()}>`;
        const key = recipientsKey(n.to);
        const refs: string[] = [];
        for (const inc of n.closes ?? []) {
          for (const r of announced.all(inc, key) as { message_id: string }[]) if (!refs.includes(r.message_id)) refs.push(r.message_id);
        }
        const id = Number((insert.get(now, JSON.stringify(n.to), n.subject, n.text, n.html, n.school, JSON.stringify(n.incidents), messageId, now, JSON.stringify(refs.slice(-MAX_REFERENCES))) as { id: number }).id);
        for (const inc of n.opens ?? []) remember.run(inc, key, messageId, id);
        ids.push(id);
      }
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
    if (ids.length > 0) this.kick();
    return ids;
  }

  /** Sends what is due now; schedules itself for the next due message. */
  kick(): void {
    if (this.stopped) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  /** Waits for the drain under way (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    clearTimeout(this.timer);
    const due = this.db.prepare("SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id");
    const sent = this.db.prepare("UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, response = ?, last_error = NULL WHERE id = ?");
    const failed = this.db.prepare('UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?');
    for (const row of due.all(Date.now()) as Record<string, string | number | null>[]) {
      if (this.stopped) return;
      const id = Number(row.id);
      try {
        const info = await this.transport.sendMail({
          from: this.mail.from,
          to: JSON.parse(String(row.recipients)) as string[],
          subject: String(row.subject),
          text: String(row.text),
          html: String(row.html),
          messageId: String(row.message_id),
          ...threadHeaders(JSON.parse(String(row.refs ?? '[]')) as string[]),
        });
        sent.run(Date.now(), String(info.response ?? ''), id);
        this.log.info({ outbox: id, to: row.recipients, subject: row.subject }, 'notice sent');
      } catch (err) {
        const attempts = Number(row.attempts) + 1;
        const wait = Math.min(this.mail.max_backoff, this.mail.min_backoff * 2 ** (attempts - 1));
        failed.run(Date.now() + wait, (err as Error).message, id);
        this.log.warn({ outbox: id, err: (err as Error).message, retry_in_ms: wait }, 'notice not sent; it waits in the outbox');
      }
    }
    const next = this.db.prepare("SELECT min(next_attempt_at) AS next FROM outbox WHERE status = 'pending'").get() as { next: number | null };
    if (next.next !== null && !this.stopped) {
      this.timer = setTimeout(() => this.kick(), Math.max(0, next.next - Date.now()));
      this.timer.unref();
    }
  }

  rows(): OutboxRow[] {
    return (this.db.prepare('SELECT * FROM outbox ORDER BY id').all() as Record<string, string | number | null>[]).map((r) => ({
      id: Number(r.id),
      createdAt: Number(r.created_at),
      to: JSON.parse(String(r.recipients)) as string[],
      subject: String(r.subject),
      status: r.status as OutboxRow['status'],
      attempts: Number(r.attempts),
      nextAttemptAt: Number(r.next_attempt_at),
      lastError: r.last_error === null ? null : String(r.last_error),
      sentAt: r.sent_at === null ? null : Number(r.sent_at),
      messageId: String(r.message_id),
      school: String(r.school),
      incidents: JSON.parse(String(r.incidents)) as number[],
      references: JSON.parse(String(r.refs ?? '[]')) as string[],
    }));
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.idle();
    this.transport.close();
  }
}
