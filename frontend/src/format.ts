/**
 * Dates and times the Vietnamese way in both languages: dd/MM/yyyy and a 24-hour clock, in
 * the consultation's own time zone, which is named when it is not the viewer's.
 */

import { browserZone, isoToZoned, isValidZone } from "./time";

export interface Window {
  start: string;
  end: string;
  /** The consultation's zone when the viewer's browser is in another one, else null. */
  zone: string | null;
}

/** "dd/MM/yyyy HH:mm" of the instant ``iso`` on the wall clocks of ``zone``. */
export function dateTime(iso: string, zone: string): string {
  const [date, time] = isoToZoned(iso, zone).split("T");
  return `${date.split("-").reverse().join("/")} ${time}`;
}

export function formatWindow(startIso: string, endIso: string, timeZone: string): Window {
  const zone = isValidZone(timeZone) ? timeZone : "UTC";
  const [startDay] = isoToZoned(startIso, zone).split("T");
  const [endDay, endTime] = isoToZoned(endIso, zone).split("T");
  return {
    start: dateTime(startIso, zone),
    end: startDay === endDay ? endTime : dateTime(endIso, zone),
    zone: zone === browserZone() ? null : zone,
  };
}

/** "HH:mm" in the viewer's own zone, for times in the room (chat, record saved). */
export function clock(iso: string): string {
  return Number.isNaN(Date.parse(iso)) ? "" : isoToZoned(iso, browserZone()).split("T")[1];
}
