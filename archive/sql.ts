// SQL text helpers shared by the archive's readers and writers.

/** A string as an SQL literal (paths, mostly). */
export const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;
