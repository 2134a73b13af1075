import { describe, expect, it } from "vitest";

import { CHAT_KEEP, layoutTiles, mergeChat, quality, SpeakingDetector, type ChatMessage } from "../src/room/model";

const member = (participant_id: string, role: string) => ({ participant_id, role });

describe("layoutTiles", () => {
  it("puts the presenter's camera first and large; observers get no tile", () => {
    const tiles = layoutTiles([member("h", "host"), member("a", "participant"), member("p", "presenter"), member("o", "observer")], []);
    expect(tiles.map((t) => [t.key, t.large])).toEqual([["p", true], ["h", false], ["a", false]]);
  });

  it("without a presenter the host is large", () => {
    const tiles = layoutTiles([member("a", "participant"), member("h", "host")], []);
    expect(tiles[0]).toMatchObject({ key: "h", large: true });
  });

  it("a screen share is large and first, cameras all small", () => {
    const tiles = layoutTiles([member("h", "host"), member("p", "presenter")], ["h", "gone"]);
    expect(tiles.map((t) => [t.key, t.screen, t.large])).toEqual([
      ["h:screen", true, true],
      ["h", false, false],
      ["p", false, false],
    ]);
  });
});

describe("quality", () => {
  it("reads loss and RTT, and the link state wins when worse", () => {
    expect(quality(null, null)).toBe("unknown");
    expect(quality(null, "full")).toBe("good");
    expect(quality({ fraction_lost: 0, rtt_s: 0.05 }, "full")).toBe("good");
    expect(quality({ fraction_lost: 0.05, rtt_s: 0.05 }, null)).toBe("fair");
    expect(quality({ fraction_lost: 0, rtt_s: 0.7 }, "full")).toBe("poor");
    expect(quality({ fraction_lost: 0, rtt_s: 0.05 }, "reduced")).toBe("fair");
    expect(quality({ fraction_lost: 0.2 }, "reduced")).toBe("poor");
    expect(quality({ fraction_lost: 0 }, "audio-only")).toBe("audio-only");
    expect(quality({ fraction_lost: null, rtt_s: null }, null)).toBe("unknown");
  });
});

describe("mergeChat", () => {
  const msg = (id: number, sent_at: string, text = `m${id}`): ChatMessage => ({
    id, participant_id: "p", user_id: 1, name: "A", hospital_code: "BM", text, sent_at,
  });

  it("keeps one copy per id (ack and broadcast of the same message), in send order", () => {
    const history = [msg(2, "2026-01-01T10:00:02Z"), msg(1, "2026-01-01T10:00:01Z")];
    const merged = mergeChat(history, [msg(3, "2026-01-01T10:00:03Z"), msg(2, "2026-01-01T10:00:02Z", "m2")]);
    expect(merged.map((m) => m.id)).toEqual([1, 2, 3]);
  });

  it("keeps the last CHAT_KEEP", () => {
    const many = Array.from({ length: CHAT_KEEP + 5 }, (_, i) => msg(i, new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString()));
    const merged = mergeChat([], many);
    expect(merged).toHaveLength(CHAT_KEEP);
    expect(merged[0].id).toBe(5);
  });
});

describe("SpeakingDetector", () => {
  it("turns on after sustained sound and off after sustained quiet, ignoring blips", () => {
    const d = new SpeakingDetector(0.02, 200, 800);
    expect(d.sample(0.1, 0)).toBe(false);
    expect(d.sample(0.0, 100)).toBe(false); // a blip: not speaking
    expect(d.sample(0.1, 200)).toBe(false);
    expect(d.sample(0.1, 300)).toBe(false);
    expect(d.sample(0.1, 400)).toBe(true);
    expect(d.value).toBe(true);
    expect(d.sample(0.0, 500)).toBe(false);
    expect(d.sample(0.1, 600)).toBe(false); // a pause between words
    expect(d.sample(0.0, 700)).toBe(false);
    expect(d.sample(0.0, 1400)).toBe(false);
    expect(d.sample(0.0, 1500)).toBe(true);
    expect(d.value).toBe(false);
  });
});
