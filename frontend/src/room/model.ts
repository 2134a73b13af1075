/**
 * The room's pure rules (no DOM, no WebRTC), shared by the room modules and unit-tested:
 * which tile is large, the connection-quality level, chat history, who speaks.
 */

export interface TrackRef {
  mid: string;
  publisher_id: string;
  track_id: string;
  kind: string;
}

export interface VideoRef {
  publisher_id: string;
  track_id: string;
  screen_share: boolean;
}

export interface Forwarding {
  link_state: "full" | "reduced" | "audio-only";
  videos: VideoRef[];
  paused: VideoRef[];
}

export interface ReceiveStats {
  bitrate_bps?: number | null;
  video_fps?: number | null;
  streams?: number | null;
  packets_lost?: number | null;
  fraction_lost?: number | null;
  rtt_s?: number | null;
}

export type Quality = "unknown" | "good" | "fair" | "poor" | "audio-only";

/** One level from the SFU's view of this member's downlink (`stats`) and its link state
 * (`media:forwarding`); the worse of the two wins. */
export function quality(receive: ReceiveStats | null | undefined, link: Forwarding["link_state"] | null): Quality {
  if (link === "audio-only") return "audio-only";
  let level: Quality = "unknown";
  if (receive) {
    const loss = receive.fraction_lost ?? null;
    const rtt = receive.rtt_s ?? null;
    if (loss === null && rtt === null) level = "unknown";
    else if ((loss ?? 0) >= 0.1 || (rtt ?? 0) >= 0.6) level = "poor";
    else if ((loss ?? 0) >= 0.03 || (rtt ?? 0) >= 0.3) level = "fair";
    else level = "good";
  }
  if (link === "reduced" && (level === "good" || level === "unknown")) return "fair";
  if (link === "full" && level === "unknown") return "good";
  return level;
}

/** Each publisher's videos in publish order: the first is the camera, a second the screen
 * share (the publish convention, docs/media.md). */
export function publisherVideos(tracks: TrackRef[]): Map<string, { camera: string | null; screen: string | null }> {
  const out = new Map<string, { camera: string | null; screen: string | null }>();
  for (const t of tracks) {
    if (t.kind !== "video") continue;
    const entry = out.get(t.publisher_id) ?? { camera: null, screen: null };
    if (entry.camera === null) entry.camera = t.track_id;
    else if (entry.screen === null) entry.screen = t.track_id;
    out.set(t.publisher_id, entry);
  }
  return out;
}

export interface TileMember {
  participant_id: string;
  role: string;
}

export interface TileSpec {
  /** `pid` for a camera tile, `pid:screen` for a screen share. */
  key: string;
  participantId: string;
  screen: boolean;
  large: boolean;
}

/** Tiles in display order: screen shares first and large; else the presenter's camera large
 * (or, with no presenter, the host's); observers have no tile. */
export function layoutTiles(members: TileMember[], screens: string[]): TileSpec[] {
  const visible = members.filter((m) => m.role !== "observer");
  const shares: TileSpec[] = screens
    .filter((pid) => visible.some((m) => m.participant_id === pid))
    .map((pid) => ({ key: `${pid}:screen`, participantId: pid, screen: true, large: true }));
  const lead =
    shares.length > 0
      ? null
      : (visible.find((m) => m.role === "presenter") ?? visible.find((m) => m.role === "host") ?? null);
  const cameras: TileSpec[] = visible.map((m) => ({
    key: m.participant_id,
    participantId: m.participant_id,
    screen: false,
    large: lead !== null && m.participant_id === lead.participant_id,
  }));
  cameras.sort((a, b) => Number(b.large) - Number(a.large));
  return [...shares, ...cameras];
}

export interface ChatMessage {
  id: number | string;
  participant_id: string;
  user_id: number;
  name: string;
  hospital_code: string;
  text: string;
  sent_at: string;
  client_id?: string | null;
}

export const CHAT_KEEP = 200;

/** The history with `incoming` merged in: no duplicate id, in send order, the last CHAT_KEEP. */
export function mergeChat(history: ChatMessage[], incoming: ChatMessage[]): ChatMessage[] {
  const byId = new Map<string, ChatMessage>();
  for (const m of [...history, ...incoming]) byId.set(String(m.id), m);
  const all = [...byId.values()].sort((a, b) =>
    a.sent_at === b.sent_at ? String(a.id).localeCompare(String(b.id), undefined, { numeric: true }) : a.sent_at < b.sent_at ? -1 : 1,
  );
  return all.slice(-CHAT_KEEP);
}

/** Speaking from audio levels (0–1): on after `onMs` loud, off after `offMs` quiet. */
export class SpeakingDetector {
  private speaking = false;
  private since: number | null = null;

  constructor(
    private readonly threshold = 0.02,
    private readonly onMs = 200,
    private readonly offMs = 800,
  ) {}

  get value(): boolean {
    return this.speaking;
  }

  /** Feeds one level; returns true when the speaking state changed. */
  sample(level: number, now: number): boolean {
    const loud = level >= this.threshold;
    if (loud === this.speaking) {
      this.since = null;
      return false;
    }
    if (this.since === null) this.since = now;
    if (now - this.since >= (loud ? this.onMs : this.offMs)) {
      this.speaking = loud;
      this.since = null;
      return true;
    }
    return false;
  }
}
