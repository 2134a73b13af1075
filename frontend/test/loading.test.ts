import { describe, expect, it } from "vitest";
import { FRAME_ACCEPT, TRANSFER_SYNTAX } from "../src/viewer/frameAccept";
import { INTERACTION_CONCURRENCY, LoadQueue, outward, PREFETCH_CONCURRENCY } from "../src/viewer/loadOrder";
import { cornerTransform, renderedUrl } from "../src/viewer/preview";
import { sliceStatus, type SliceStatusInput } from "../src/viewer/sliceStatus";

/** The Accept header's entries as the server reads them (PS3.18 8.7.3). */
function acceptEntries(header: string) {
  return header.split(/,\s*/).map((entry) => {
    const [media, ...params] = entry.split(";").map((p) => p.trim());
    const p = Object.fromEntries(params.map((kv) => kv.split("=")).map(([k, v]) => [k, v.replace(/"/g, "")]));
    return { media, type: p.type, syntax: p["transfer-syntax"], q: Number(p.q) };
  });
}

describe("the frame Accept header", () => {
  const entries = acceptEntries(FRAME_ACCEPT);

  it("asks multipart frames in every lossless encoding the loader decodes, each with a q-value", () => {
    expect(entries.every((e) => e.media === "multipart/related" && e.q > 0 && e.q <= 1)).toBe(true);
    expect(entries.map((e) => [e.type, e.syntax])).toEqual([
      ["image/jphc", TRANSFER_SYNTAX.htj2kLossless],
      ["application/octet-stream", "*"],
      ["image/jls", TRANSFER_SYNTAX.jpegLsLossless],
      ["image/jp2", TRANSFER_SYNTAX.jpeg2000Lossless],
      ["application/octet-stream", TRANSFER_SYNTAX.explicitLittleEndian],
    ]);
  });

  it("puts HTJ2K and the stored encoding first, on equal q, and uncompressed last", () => {
    const q = Object.fromEntries(entries.map((e) => [`${e.type} ${e.syntax}`, e.q]));
    expect(q[`image/jphc ${TRANSFER_SYNTAX.htj2kLossless}`]).toBe(1);
    expect(q["application/octet-stream *"]).toBe(1);
    expect(q[`image/jls ${TRANSFER_SYNTAX.jpegLsLossless}`]).toBeGreaterThan(q[`image/jp2 ${TRANSFER_SYNTAX.jpeg2000Lossless}`]);
    const uncompressed = q[`application/octet-stream ${TRANSFER_SYNTAX.explicitLittleEndian}`];
    expect(entries.every((e) => e.syntax === TRANSFER_SYNTAX.explicitLittleEndian || e.q > uncompressed)).toBe(true);
  });
});

describe("outward order", () => {
  it("goes from the centre both ways, the last move's way first", () => {
    expect([...outward(5, 10)]).toEqual([5, 6, 4, 7, 3, 8, 2, 9, 1, 0]);
    expect([...outward(5, 10, -1)]).toEqual([5, 4, 6, 3, 7, 2, 8, 1, 9, 0]);
  });

  it("covers the stack once from either end, and clamps the centre", () => {
    expect([...outward(0, 4)]).toEqual([0, 1, 2, 3]);
    expect([...outward(9, 4)]).toEqual([3, 2, 1, 0]);
    expect([...outward(0, 0)]).toEqual([]);
    expect(new Set(outward(123, 500)).size).toBe(500);
  });
});

describe("the load queue", () => {
  it("asks for the wanted slice first and holds prefetch until it has come", () => {
    const q = new LoadQueue(500);
    expect(q.takePrefetch()).toEqual([]); // nothing wanted yet
    expect(q.want(250)).toBe(true);
    expect(q.state(250)).toBe("fetching");
    expect(q.takePrefetch()).toEqual([]);
    q.settle(250, true);
    expect(q.takePrefetch()).toEqual([251, 249]);
    expect(q.takePrefetch()).toEqual([]); // the limit is reached
    expect(PREFETCH_CONCURRENCY).toBe(2);
  });

  it("on a jump asks for the new slice at once and starts no prefetch until it has come", () => {
    const q = new LoadQueue(500);
    q.want(100);
    q.settle(100, true);
    const inFlight = q.takePrefetch(); // 101, 99
    expect(q.want(300)).toBe(true); // not behind the prefetches in flight
    for (const i of inFlight) q.settle(i, true);
    expect(q.takePrefetch()).toEqual([]);
    q.settle(300, true);
    // Outward from the new slice, the way of the jump first.
    expect(q.takePrefetch()).toEqual([301, 299]);
  });

  it("keeps at most two wanted slices in flight, and then asks only for the newest", () => {
    const q = new LoadQueue(500);
    expect(q.want(10)).toBe(true);
    expect(q.want(20)).toBe(true);
    expect(INTERACTION_CONCURRENCY).toBe(2);
    expect(q.want(30)).toBe(false); // no slot
    expect(q.want(40)).toBe(false);
    expect(q.nextFetch()).toBeNull();
    q.settle(10, true);
    expect(q.nextFetch()).toBe(40); // 30 was passed over: left to prefetch
    expect(q.nextFetch()).toBeNull();
    expect(q.state(30)).toBe("pending");
  });

  it("does not ask again for a slice loaded or already on its way as a prefetch", () => {
    const q = new LoadQueue(10);
    q.want(5);
    q.settle(5, true);
    const [next] = q.takePrefetch(); // 6
    expect(q.want(next)).toBe(false);
    expect(q.state(next)).toBe("prefetching");
    expect(q.want(5)).toBe(false);
    expect(q.isLoaded(5)).toBe(true);
  });

  it("counts loads once, whoever reported them, and evicted slices come back only when wanted", () => {
    const q = new LoadQueue(4);
    q.settle(0, true);
    q.settle(0, true);
    q.settle(1, true);
    expect(q.loaded).toBe(2);
    q.settle(1, false); // a late failure of a slice loaded since
    expect(q.isLoaded(1)).toBe(true);
    q.evict(1);
    expect(q.loaded).toBe(1);
    q.want(0);
    expect(q.takePrefetch()).toEqual([2, 3]); // not the evicted 1
    expect(q.want(1)).toBe(true);
  });

  it("retries a failed wanted slice when it is wanted anew, and prefetch goes on meanwhile", () => {
    const q = new LoadQueue(10);
    q.want(4);
    q.settle(4, false);
    expect(q.state(4)).toBe("failed");
    expect(q.want(4)).toBe(false); // the same want: no retry storm on every state change
    expect(q.takePrefetch()).toEqual([5, 3]);
    q.want(8);
    expect(q.want(4)).toBe(true);
  });

  it("shows the wanted slice, or while it is coming one wanted after the one on screen", () => {
    const q = new LoadQueue(500);
    q.settle(100, true);
    q.want(100); // on screen
    q.want(130);
    q.want(180);
    q.want(250);
    q.settle(130, true);
    expect(q.shouldShow(130, 100)).toBe(true); // the controller's way there
    q.settle(180, true);
    expect(q.shouldShow(180, 130)).toBe(true);
    expect(q.shouldShow(130, 180)).toBe(false); // older than what is shown
    q.settle(101, true); // a prefetch near the old place: nobody asked to see it
    expect(q.shouldShow(101, 180)).toBe(false);
    q.settle(250, true);
    expect(q.shouldShow(250, 180)).toBe(true);
    expect(q.shouldShow(180, 100)).toBe(false); // the wanted one is there: only it
  });
});

describe("slice status", () => {
  const base: SliceStatusInput = { wanted: 250, shown: 240, preview: null, failed: false, playing: false };

  it("says the wanted slice is loading while an older one is on the canvas", () => {
    expect(sliceStatus(base)).toEqual({ quality: "loading", index: 250 });
    expect(sliceStatus({ ...base, shown: null })).toEqual({ quality: "loading", index: 250 });
  });

  it("calls a preview of the wanted slice a preview, and a preview of another slice nothing", () => {
    expect(sliceStatus({ ...base, preview: 250 })).toEqual({ quality: "preview", index: 250 });
    expect(sliceStatus({ ...base, preview: 240 })).toEqual({ quality: "loading", index: 250 });
  });

  it("is full quality once the wanted slice's frame is on the canvas, preview or not", () => {
    expect(sliceStatus({ ...base, shown: 250 })).toEqual({ quality: "full", index: 250 });
    expect(sliceStatus({ ...base, shown: 250, preview: 250 })).toEqual({ quality: "full", index: 250 });
  });

  it("says when the wanted slice failed, and nothing before a series is open", () => {
    expect(sliceStatus({ ...base, failed: true })).toEqual({ quality: "failed", index: 250 });
    expect(sliceStatus({ ...base, wanted: null })).toBeNull();
  });

  it("during cine speaks of the frame shown, the viewer's own step", () => {
    expect(sliceStatus({ ...base, playing: true })).toEqual({ quality: "full", index: 240 });
  });
});

describe("the preview", () => {
  const frame = "wadors:http://127.0.0.1:8080/dicomweb/studies/1/series/2/instances/3/frames/1";

  it("is the frame's rendered JPEG, small, in the viewer's window", () => {
    const url = new URL(renderedUrl(frame, { center: -600, width: 1500 }));
    expect(url.pathname).toBe("/dicomweb/studies/1/series/2/instances/3/frames/1/rendered");
    expect(url.searchParams.get("viewport")).toBe("256,256");
    expect(url.searchParams.get("quality")).toBe("70");
    expect(url.searchParams.get("window")).toBe("-600,1500");
    expect(new URL(renderedUrl(frame, null)).searchParams.has("window")).toBe(false);
  });

  it("is laid on the image's corners: scale and offset, rotation, flip", () => {
    expect(cornerTransform([10, 20], [522, 20], [10, 532], 256, 256)).toBe("matrix(2, 0, 0, 2, 10, 20)");
    // Rotated 90° right: the top edge runs down the canvas, the left edge leftwards.
    expect(cornerTransform([300, 0], [300, 200], [100, 0], 100, 100)).toBe("matrix(0, 2, -2, 0, 300, 0)");
    // Flipped horizontally.
    expect(cornerTransform([200, 0], [0, 0], [200, 100], 100, 50)).toBe("matrix(-2, 0, 0, 2, 200, 0)");
  });
});
