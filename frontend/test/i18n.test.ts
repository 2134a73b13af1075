import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { describe, expect, it } from "vitest";

import { dateTime, formatWindow } from "../src/format";
import { en } from "../src/i18n/en";
import { vi } from "../src/i18n/vi";
import { pickLanguage } from "../src/strings";

describe("catalogues", () => {
  it("have the same keys, each of the same kind and arity", () => {
    expect(Object.keys(vi).sort()).toEqual(Object.keys(en).sort());
    for (const [key, value] of Object.entries(en)) {
      const other = (vi as Record<string, unknown>)[key];
      expect(typeof other, key).toBe(typeof value);
      if (typeof value === "function") expect((other as (...a: unknown[]) => unknown).length, key).toBe(value.length);
      if (Array.isArray(value)) expect((other as unknown[]).length, key).toBe(value.length);
    }
  });

  it("speak medical Vietnamese with its diacritics", () => {
    expect(vi.role("host")).toBe("Chủ trì");
    expect(vi.tier("central")).toBe("tuyến trung ương");
    expect(vi.tier("commune")).toBe("tuyến xã");
    expect(vi.recordConclusion).toBe("Kết luận");
    expect(vi.recordPlan).toBe("Hướng điều trị");
    expect(vi.homeTitle).toBe("Các buổi hội chẩn sắp tới");
    expect(vi.minutesTitle).toBe("Biên bản hội chẩn");
    expect(vi.minutesRole("chair")).toBe("Chủ trì");
    expect(vi.minutesField("diagnosis_after")).toBe("Chẩn đoán sau hội chẩn");
    expect(vi.minutesDownloadPdf).toBe("Tải PDF");
  });

  it("count with the language's own plural and number forms", () => {
    expect(en.cases(1)).toBe("1 case");
    expect(en.cases(2)).toBe("2 cases");
    expect(en.invitees(1200)).toBe("1,200 invitations");
    expect(vi.cases(1)).toBe("1 ca bệnh");
    expect(vi.invitees(1200)).toBe("1.200 lời mời");
    expect(vi.measurementLength(42.25, "mm")).toBe("42,3 mm");
    expect(en.measurementRoi(120.44, "mm²", -1000, "HU")).toBe("120.4 mm² · mean -1000.0 HU");
  });

  it("give every API error code words, with the server's facts where it has them", () => {
    expect(vi.apiError("forbidden", "not allowed")).toBe("Bạn không có quyền thực hiện thao tác này.");
    expect(vi.apiError("booking_clash", "GS. An 08:00–09:00")).toBe("Chuyên gia chủ trì đã có lịch: GS. An 08:00–09:00");
    expect(en.apiError("something_new", "odd")).toBe("The server answered: odd");
  });
});

describe("choosing the language", () => {
  it("is the saved choice, else the browser's, else Vietnamese", () => {
    expect(pickLanguage("en", ["vi-VN"])).toBe("en");
    expect(pickLanguage(null, ["fr-FR", "en-US"])).toBe("en");
    expect(pickLanguage(null, ["vi"])).toBe("vi");
    expect(pickLanguage("de", ["fr-FR", "ja"])).toBe("vi");
    expect(pickLanguage(null, [])).toBe("vi");
  });
});

describe("dates and times", () => {
  it("read dd/MM/yyyy on a 24-hour clock in the consultation's zone", () => {
    expect(dateTime("2026-12-03T07:30:00Z", "Asia/Ho_Chi_Minh")).toBe("03/12/2026 14:30");
    const w = formatWindow("2026-12-03T07:30:00Z", "2026-12-03T09:00:00Z", "Asia/Ho_Chi_Minh");
    expect([w.start, w.end]).toEqual(["03/12/2026 14:30", "16:00"]);
    const overnight = formatWindow("2026-12-03T16:30:00Z", "2026-12-03T17:30:00Z", "Asia/Ho_Chi_Minh");
    expect(overnight.end).toBe("04/12/2026 00:30");
  });

  it("name the zone only when it is not the viewer's own", () => {
    const own = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const other = own === "Asia/Ho_Chi_Minh" ? "Europe/Paris" : "Asia/Ho_Chi_Minh";
    expect(formatWindow("2026-12-03T07:30:00Z", "2026-12-03T09:00:00Z", own).zone).toBeNull();
    expect(formatWindow("2026-12-03T07:30:00Z", "2026-12-03T09:00:00Z", other).zone).toBe(other);
    expect(vi.timeWindow("03/12/2026 14:30", "16:00", null)).toBe("03/12/2026 14:30 – 16:00");
    expect(vi.timeWindow("03/12/2026 14:30", "16:00", "Asia/Ho_Chi_Minh")).toBe("03/12/2026 14:30 – 16:00 (giờ Asia/Ho_Chi_Minh)");
  });
});

describe("words on screen", () => {
  // A literal with words of its own, put on screen: as a child of h(tag, attrs, ...) or as
  // text, a title, a placeholder or a label. Interpolated templates are built from the
  // catalogues; quotes inside comments are not code.
  const child = /\bh\(\s*"[a-z0-9]+"\s*,\s*(?:\{[^{}]*\}|null|undefined)\s*,\s*(["'])((?:(?!\1).)*[A-Za-zÀ-ỹ]{2}(?:(?!\1).)*)\1/g;
  const attribute = /(?:textContent|innerText|placeholder|title|alt|"aria-label"|label)\s*[:=]\s*(["'])((?:(?!\1).)*[A-Za-zÀ-ỹ]{2}(?:(?!\1).)*)\1/g;

  function sources(dir: string): string[] {
    return readdirSync(dir, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".ts") && !f.startsWith("i18n") && f !== "strings.ts")
      .map((f) => join(dir, f));
  }

  it("come only from the catalogues", () => {
    const found: string[] = [];
    for (const file of sources(join(__dirname, "../src"))) {
      readFileSync(file, "utf8")
        .split("\n")
        .forEach((line, i) => {
          if (/^\s*(\/\/|\*|\/\*)/.test(line)) return;
          for (const m of [...line.matchAll(child), ...line.matchAll(attribute)]) found.push(`${file}:${i + 1}: ${m[0]}`);
        });
    }
    expect(found).toEqual([]);
  });

  it("the check finds a literal when there is one", () => {
    expect('h("span", {}, "Loading")'.match(child)).not.toBeNull();
    expect('button.textContent = "Save";'.match(attribute)).not.toBeNull();
    expect('h("span", {}, strings.loading)'.match(child)).toBeNull();
  });
});
