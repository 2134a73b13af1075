/**
 * The room's pure rules (no DOM, no WebRTC), shared by the room modules and unit-tested:
 * which tile is large, the connection-quality level, chat history, who speaks.
 */

/** One sending m-section of a subscribe offer: whose track its mid carries
 * (docs/signaling.md, "Which publisher a track is"). */
export interface TrackRef {
  mid: string;
  publisher_id: string;
  track_id: string;
  kind: string;
  screen_share: boolean;
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

/**
 * The subscribe connection's mid → track mapping, exactly as the last applied offer states
 * it: the only source of whose video a mid carries. Each offer lists all of its sending
 * m-sections, so applying one replaces the whole mapping; a mid never changes publisher
 * on one connection, and a new connection starts an empty mapping (`reset`). Track ids
 * are the publishers' own and may repeat across publishers: never match by them.
 */
export class TrackMap {
  private byMid = new Map<string, TrackRef>();
  private applied = 0;

  /** The mapping of the offer with `version`, applied with its SDP. False (and nothing
   * changed) for an offer older than the one applied: it describes an SDP gone by. */
  apply(version: number, tracks: TrackRef[]): boolean {
    if (version < this.applied) return false;
    this.applied = version;
    this.byMid = new Map(tracks.map((t) => [t.mid, t]));
    return true;
  }

  /** A new subscribe connection: its mids are its own. */
  reset(): void {
    this.byMid.clear();
    this.applied = 0;
  }

  /** Whose track `mid` carries; undefined for a mid no applied offer sends on. */
  at(mid: string | null | undefined): TrackRef | undefined {
    return mid ? this.byMid.get(mid) : undefined;
  }

  /** The mid carrying a publisher's camera (or screen share), if one is offered. */
  videoMid(publisherId: string, screen: boolean): string | null {
    for (const t of this.byMid.values()) {
      if (t.publisher_id === publisherId && t.kind === "video" && t.screen_share === screen) return t.mid;
    }
    return null;
  }

  audioMid(publisherId: string): string | null {
    for (const t of this.byMid.values()) {
      if (t.publisher_id === publisherId && t.kind === "audio") return t.mid;
    }
    return null;
  }

  /** Publishers whose screen share is offered. */
  screens(): string[] {
    return [...new Set([...this.byMid.values()].filter((t) => t.kind === "video" && t.screen_share).map((t) => t.publisher_id))];
  }
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
