/** Dates shown in the consultation's own time zone, in the browser's locale. */

export function formatWindow(startIso: string, endIso: string, timeZone: string): { start: string; end: string } {
  const start = new Date(startIso);
  const end = new Date(endIso);
  const zone = safeZone(timeZone);
  const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short", timeZone: zone });
  const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "short", timeZone: zone });
  const day = new Intl.DateTimeFormat("en-CA", { timeZone: zone });
  const sameDay = day.format(start) === day.format(end);
  return { start: dateTime.format(start), end: sameDay ? timeOnly.format(end) : dateTime.format(end) };
}

function safeZone(timeZone: string): string | undefined {
  try {
    new Intl.DateTimeFormat(undefined, { timeZone });
    return timeZone;
  } catch {
    return undefined;
  }
}
