import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { RoomConnection } from "../src/room/connection";
import { MediaSession, type SubscribeOffer } from "../src/room/media";
import { TrackMap, type TrackRef } from "../src/room/model";

const video = (mid: string, publisher_id: string, track_id = "camera", screen_share = false): TrackRef => ({
  mid, publisher_id, track_id, kind: "video", screen_share,
});

describe("TrackMap", () => {
  it("names a mid's publisher from the applied offer only, whatever the track ids", () => {
    const map = new TrackMap();
    // Two publishers whose clients use the same track id (native apps often do).
    expect(map.apply(1, [video("0", "a"), video("1", "b"), video("2", "a", "screen", true)])).toBe(true);
    expect(map.at("0")?.publisher_id).toBe("a");
    expect(map.videoMid("a", false)).toBe("0");
    expect(map.videoMid("b", false)).toBe("1");
    expect(map.videoMid("a", true)).toBe("2");
    expect(map.screens()).toEqual(["a"]);
  });

  it("each offer's list replaces the last; an older offer changes nothing", () => {
    const map = new TrackMap();
    map.apply(1, [video("0", "a"), video("1", "b")]);
    // a left (its m-section is inactive: not listed), c came on a new mid.
    map.apply(2, [video("1", "b"), video("2", "c")]);
    expect(map.at("0")).toBeUndefined();
    expect(map.videoMid("a", false)).toBeNull();
    expect(map.videoMid("c", false)).toBe("2");
    expect(map.apply(1, [video("0", "a")])).toBe(false);
    expect(map.videoMid("c", false)).toBe("2");
    // The same offer sent again (after a resume) applies again.
    expect(map.apply(2, [video("1", "b"), video("2", "c")])).toBe(true);
  });

  it("a new subscribe connection starts from nothing: its mids are its own", () => {
    const map = new TrackMap();
    map.apply(4, [video("0", "a")]);
    map.reset();
    expect(map.at("0")).toBeUndefined();
    expect(map.apply(1, [video("0", "b")])).toBe(true);
    expect(map.at("0")?.publisher_id).toBe("b");
  });
});

// -- MediaSession over fake WebRTC: which stream a tile gets for a member -----------------

interface FakeTrack {
  id: string;
  kind: string;
  readyState: string;
  addEventListener(): void;
}

const fakeTrack = (id: string): FakeTrack => ({ id, kind: "video", readyState: "live", addEventListener: () => undefined });

/** A subscribe connection whose "SDP" is one `mid=track` per line; each new mid fires a
 * track event with that fake track, as a browser does inside setRemoteDescription. */
class FakePc extends EventTarget {
  static tracks = new Map<string, FakeTrack>();
  signalingState = "stable";
  connectionState = "new";
  localDescription: { type: string; sdp: string } | null = null;
  private mids = new Set<string>();

  async setRemoteDescription({ sdp }: { sdp: string }): Promise<void> {
    for (const line of sdp.split("\n")) {
      const [mid, name] = line.split("=");
      if (this.mids.has(mid)) continue;
      this.mids.add(mid);
      this.dispatchEvent(Object.assign(new Event("track"), { transceiver: { mid }, track: FakePc.tracks.get(name) }));
    }
  }

  async createAnswer(): Promise<{ type: string; sdp: string }> {
    return { type: "answer", sdp: "answer" };
  }

  async setLocalDescription(d: { type: string; sdp: string }): Promise<void> {
    this.localDescription = d;
  }

  close(): void {
    this.signalingState = "closed";
  }
}

class FakeMediaStream {
  constructor(private readonly tracks: FakeTrack[]) {}
  getVideoTracks(): FakeTrack[] {
    return this.tracks;
  }
}

class FakeConnection {
  handlers = new Map<string, (body: unknown) => void>();
  sent: [string, Record<string, unknown>][] = [];
  constructor(private readonly first: SubscribeOffer) {}

  on<T>(event: string, handler: (payload: T) => void): () => void {
    this.handlers.set(event, handler as (body: unknown) => void);
    return () => this.handlers.delete(event);
  }

  async request<T>(event: string, payload: Record<string, unknown> = {}): Promise<T> {
    this.sent.push([event, payload]);
    return (event === "media:subscribe" ? this.first : { ok: true }) as T;
  }

  answers(): unknown[] {
    return this.sent.filter(([e]) => e === "media:subscribe_answer").map(([, p]) => p.version);
  }
}

describe("MediaSession tiles", () => {
  beforeEach(() => {
    vi.stubGlobal("RTCPeerConnection", FakePc);
    vi.stubGlobal("MediaStream", FakeMediaStream);
    // Every publisher's camera track has the same id: only the mid tells them apart.
    FakePc.tracks = new Map(["a", "b", "c"].map((p) => [p, fakeTrack("camera")]));
  });
  afterEach(() => vi.unstubAllGlobals());

  it("shows each doctor's own video under their name through renegotiations", async () => {
    const tracks = FakePc.tracks;
    const connection = new FakeConnection({ sdp: "0=a\n1=b", version: 1, tracks: [video("0", "a"), video("1", "b")] });
    const session = new MediaSession(connection as unknown as RoomConnection, null, false, {
      onRemote: () => undefined, onLocal: () => undefined, onError: (m) => { throw new Error(m); }, onConnection: () => undefined,
    }, async () => []);
    await session.start();
    const shown = (pid: string) => session.video(pid, false)?.getVideoTracks()[0] ?? null;
    expect(shown("a")).toBe(tracks.get("a"));
    expect(shown("b")).toBe(tracks.get("b"));

    // a leaves and c arrives: one offer, on a new mid.
    const offer = connection.handlers.get("media:subscribe_offer")!;
    offer({ sdp: "0=a\n1=b\n2=c", version: 2, tracks: [video("1", "b"), video("2", "c")] });
    await vi.waitFor(() => expect(connection.answers()).toEqual([1, 2]));
    expect(shown("a")).toBeNull();
    expect(shown("b")).toBe(tracks.get("b"));
    expect(shown("c")).toBe(tracks.get("c"));

    // A stale offer is neither applied nor answered.
    offer({ sdp: "0=a\n1=b", version: 1, tracks: [video("0", "a"), video("1", "c")] });
    await new Promise((r) => setTimeout(r, 10));
    expect(connection.answers()).toEqual([1, 2]);
    expect(shown("c")).toBe(tracks.get("c"));
    session.close();
  });
});
