/**
 * Wall-clock times in a named IANA time zone, without a date library: the browser's Intl
 * knows the zones' rules. A consultation is entered and shown in its own zone
 * (`Asia/Ho_Chi_Minh`), and sent to the API as ISO 8601 with that zone's offset.
 */

const partsCache = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = partsCache.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    partsCache.set(zone, f);
  }
  return f;
}

export function isValidZone(zone: string): boolean {
  if (!zone || zone.length > 64) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The browser's own zone (UTC when it does not say). */
export function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** Every zone the browser knows, for a datalist. */
export function knownZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
  try {
    return intl.supportedValuesOf ? intl.supportedValuesOf("timeZone") : [];
  } catch {
    return [];
  }
}

interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function wallAt(instantMs: number, zone: string): Wall {
  const p: Record<string, string> = {};
  for (const part of formatter(zone).formatToParts(new Date(instantMs))) p[part.type] = part.value;
  return {
    year: Number(p.year),
    month: Number(p.month),
    day: Number(p.day),
    hour: Number(p.hour) % 24,
    minute: Number(p.minute),
    second: Number(p.second),
  };
}

/** The zone's offset from UTC at that instant, in minutes (Asia/Ho_Chi_Minh: 420). */
export function offsetMinutes(instantMs: number, zone: string): number {
  const w = wallAt(instantMs, zone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return Math.round((asUtc - Math.floor(instantMs / 1000) * 1000) / 60_000);
}

const LOCAL = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}))?$/;

/**
 * The instant of a wall-clock time (`YYYY-MM-DDTHH:mm`, or a date for midnight) in the zone.
 * In a gap (spring forward) the time after the gap; in an overlap, the earlier instant.
 */
export function zonedToUtcMs(local: string, zone: string): number {
  const m = LOCAL.exec(local);
  if (!m) throw new RangeError(`not a local date-time: ${local}`);
  const guess = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4] ?? 0), Number(m[5] ?? 0));
  // The zone's offsets around that day (a change is never closer than a day to another).
  const offsets = new Set([-86_400_000, 0, 86_400_000].map((d) => offsetMinutes(guess + d, zone)));
  const tries = [...offsets].map((o) => guess - o * 60_000);
  const wanted = localOf(guess, "UTC");
  // Overlap: two instants show the wanted wall time; take the earlier. Gap: none does; the
  // offset from before the gap gives the time after it.
  const hits = tries.filter((t) => localOf(t, zone) === wanted);
  return hits.length ? Math.min(...hits) : Math.max(...tries);
}

function pad(n: number, width = 2): string {
  return String(Math.abs(n)).padStart(width, "0");
}

function localOf(instantMs: number, zone: string): string {
  const w = wallAt(instantMs, zone);
  return `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)}T${pad(w.hour)}:${pad(w.minute)}`;
}

/** `YYYY-MM-DDTHH:mm:00+07:00`: what the API takes (times with an offset). */
export function zonedToIso(local: string, zone: string): string {
  const t = zonedToUtcMs(local, zone);
  const offset = offsetMinutes(t, zone);
  const sign = offset < 0 ? "-" : "+";
  return `${localOf(t, zone)}:00${sign}${pad(Math.trunc(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
}

/** An API time (`...Z`) as the zone's wall clock, `YYYY-MM-DDTHH:mm` (a datetime-local value). */
export function isoToZoned(iso: string, zone: string): string {
  return localOf(Date.parse(iso), zone);
}

/** The calendar date (`YYYY-MM-DD`) of an instant in the zone. */
export function dateIn(instantMs: number, zone: string): string {
  return localOf(instantMs, zone).slice(0, 10);
}

/** A calendar date moved by whole days. */
export function addDays(date: string, days: number): string {
  const [y, m, d] = date.split("-").map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + days));
  return `${pad(t.getUTCFullYear(), 4)}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}`;
}

/** Monday of the date's week. */
export function weekStart(date: string): string {
  const [y, m, d] = date.split("-").map(Number);
  const weekday = new Date(Date.UTC(y, m - 1, d)).getUTCDay(); // 0 = Sunday
  return addDays(date, -((weekday + 6) % 7));
}

export type View = "day" | "week";

/** The days a view shows, and the `from`/`to` bounds (start times) for the API. */
export function viewRange(view: View, date: string, zone: string): { days: string[]; from: string; to: string } {
  const first = view === "week" ? weekStart(date) : date;
  const count = view === "week" ? 7 : 1;
  const days = Array.from({ length: count }, (_, i) => addDays(first, i));
  return {
    days,
    from: zonedToIso(first, zone),
    to: zonedToIso(addDays(first, count), zone),
  };
}

export function isDate(value: string | null): value is string {
  return !!value && /^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(Date.parse(value));
}
