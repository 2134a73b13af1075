import { describe, expect, it } from "vitest";
import type { ImportJob } from "../src/pages/coordinator/api";
import { caseErrorField, errorField, importFraction, pollImport } from "../src/pages/coordinator/logic";
import {
  addDays,
  dateIn,
  isoToZoned,
  isValidZone,
  offsetMinutes,
  viewRange,
  weekStart,
  zonedToIso,
  zonedToUtcMs,
} from "../src/time";
import { ApiError } from "../src/session";

describe("wall-clock times in an IANA zone", () => {
  it("sends Ho Chi Minh City times with +07:00", () => {
    expect(zonedToIso("2026-11-30T14:00", "Asia/Ho_Chi_Minh")).toBe("2026-11-30T14:00:00+07:00");
    expect(zonedToUtcMs("2026-11-30T14:00", "Asia/Ho_Chi_Minh")).toBe(Date.parse("2026-11-30T07:00:00Z"));
    expect(isoToZoned("2026-11-30T07:00:00Z", "Asia/Ho_Chi_Minh")).toBe("2026-11-30T14:00");
  });

  it("crosses the date line both ways", () => {
    expect(isoToZoned("2026-11-30T20:30:00Z", "Asia/Ho_Chi_Minh")).toBe("2026-12-01T03:30");
    expect(zonedToIso("2026-12-01T03:30", "Asia/Ho_Chi_Minh")).toBe("2026-12-01T03:30:00+07:00");
    expect(zonedToIso("2026-06-01T09:15", "America/St_Johns")).toBe("2026-06-01T09:15:00-02:30");
    expect(zonedToIso("2026-06-01T09:15", "Asia/Kathmandu")).toBe("2026-06-01T09:15:00+05:45");
  });

  it("follows daylight saving time", () => {
    expect(zonedToIso("2026-01-15T10:00", "Europe/Paris")).toBe("2026-01-15T10:00:00+01:00");
    expect(zonedToIso("2026-07-15T10:00", "Europe/Paris")).toBe("2026-07-15T10:00:00+02:00");
    // 02:30 does not exist on 29 March 2026 in Paris: the time after the gap.
    expect(zonedToIso("2026-03-29T02:30", "Europe/Paris")).toBe("2026-03-29T03:30:00+02:00");
    // 02:30 happens twice on 25 October 2026: the first one.
    expect(zonedToIso("2026-10-25T02:30", "Europe/Paris")).toBe("2026-10-25T02:30:00+02:00");
    expect(offsetMinutes(Date.parse("2026-10-25T02:00:00Z"), "Europe/Paris")).toBe(60);
  });

  it("round-trips every quarter hour of a day with a DST change", () => {
    for (let m = 0; m < 24 * 60; m += 15) {
      const local = `2026-11-01T${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
      const iso = zonedToIso(local, "America/New_York");
      const back = isoToZoned(new Date(Date.parse(iso)).toISOString(), "America/New_York");
      expect(back).toBe(local);
    }
  });

  it("knows zones from typos", () => {
    expect(isValidZone("Asia/Ho_Chi_Minh")).toBe(true);
    expect(isValidZone("UTC")).toBe(true);
    expect(isValidZone("Asia/Hanoi_City")).toBe(false);
    expect(isValidZone("")).toBe(false);
  });
});

describe("day and week views", () => {
  it("weeks start on Monday", () => {
    expect(weekStart("2026-11-29")).toBe("2026-11-23"); // a Sunday
    expect(weekStart("2026-11-30")).toBe("2026-11-30"); // a Monday
    expect(weekStart("2027-01-01")).toBe("2026-12-28");
    expect(addDays("2026-12-31", 1)).toBe("2027-01-01");
    expect(addDays("2024-03-01", -1)).toBe("2024-02-29");
  });

  it("bounds a week by midnights in the list's zone", () => {
    const r = viewRange("week", "2026-12-02", "Asia/Ho_Chi_Minh");
    expect(r.days).toEqual(["2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04", "2026-12-05", "2026-12-06"]);
    expect(r.from).toBe("2026-11-30T00:00:00+07:00");
    expect(r.to).toBe("2026-12-07T00:00:00+07:00");
  });

  it("a day is 23 hours when the clocks go forward", () => {
    const r = viewRange("day", "2026-03-29", "Europe/Paris");
    expect(r.days).toEqual(["2026-03-29"]);
    expect(Date.parse(r.to) - Date.parse(r.from)).toBe(23 * 3600_000);
  });

  it("files a consultation under its start's date in the list's zone", () => {
    const start = Date.parse("2026-11-30T18:00:00Z");
    expect(dateIn(start, "Asia/Ho_Chi_Minh")).toBe("2026-12-01");
    expect(dateIn(start, "UTC")).toBe("2026-11-30");
  });
});

describe("API errors next to their field", () => {
  it("maps the API's field, and a booking clash to the host expert", () => {
    expect(errorField(new ApiError(422, "validation_error", "end must be after start", "end"))).toBe("end");
    expect(errorField(new ApiError(422, "validation_error", "unknown IANA time zone", "timezone"))).toBe("timezone");
    expect(errorField(new ApiError(422, "validation_error", "no such active user", "invitations.1.user_id"))).toBe("invitations");
    expect(errorField(new ApiError(409, "booking_clash", "already booked"))).toBe("host_user_id");
    expect(errorField(new ApiError(500, "internal_error", "boom"))).toBe("form");
    expect(errorField(new ApiError(422, "validation_error", "?", "weird"))).toBe("form");
    expect(errorField(new TypeError("Failed to fetch"))).toBe("form");
    expect(caseErrorField(new ApiError(422, "validation_error", "future", "patient_birth_date"))).toBe("patient_birth_date");
    expect(caseErrorField(new ApiError(409, "wrong_status", "cancelled"))).toBe("form");
  });
});

function job(over: Partial<ImportJob>): ImportJob {
  return {
    id: 7,
    node_id: 1,
    case_id: 2,
    study_instance_uid: "1.2.3",
    status: "queued",
    instances_total: 3,
    instances_done: 0,
    instances_failed: 0,
    error: "",
    attempts: 0,
    ...over,
  };
}

describe("import progress", () => {
  it("is a fraction of the total, unknown without one", () => {
    expect(importFraction(job({ instances_done: 1 }))).toBeCloseTo(1 / 3);
    expect(importFraction(job({ instances_total: null, instances_done: 2, status: "running" }))).toBeNull();
    expect(importFraction(job({ instances_total: null, status: "done" }))).toBe(1);
  });

  it("polls until done, backs off while nothing moves, survives a network error", async () => {
    const timers: { fn: () => void; ms: number }[] = [];
    const answers: (ImportJob | Error)[] = [
      job({ status: "running", instances_done: 1 }),
      job({ status: "running", instances_done: 1 }),
      new TypeError("Failed to fetch"),
      job({ status: "done", instances_done: 3 }),
    ];
    const seen: string[] = [];
    pollImport(
      job({}),
      async () => {
        const next = answers.shift()!;
        if (next instanceof Error) throw next;
        return next;
      },
      (j, err) => seen.push(`${j.status}:${j.instances_done}${err ? ":error" : ""}`),
      { intervalMs: 100, maxIntervalMs: 1000, setTimer: (fn, ms) => timers.push({ fn, ms }), clearTimer: () => undefined },
    );
    for (let i = 0; i < 4; i++) {
      const t = timers.shift()!;
      t.fn();
      await new Promise((r) => setTimeout(r, 0));
    }
    expect(seen).toEqual(["running:1", "running:1", "running:1:error", "done:3"]);
    expect(timers).toEqual([]); // finished: no more polling
  });

  it("stops when told, and does not poll a finished import", async () => {
    const timers: (() => void)[] = [];
    let cleared = 0;
    const opts = { setTimer: (fn: () => void) => timers.push(fn), clearTimer: () => void cleared++ };
    pollImport(job({ status: "failed", error: "node down" }), async () => job({}), () => undefined, opts);
    expect(timers).toHaveLength(0);
    const stop = pollImport(job({}), async () => job({ status: "running" }), () => undefined, opts);
    expect(timers).toHaveLength(1);
    stop();
    expect(cleared).toBe(1);
  });
});
