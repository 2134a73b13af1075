/**
 * The video grid: a tile per member (observers have none) labelled with name, hospital and
 * tier; a speaking ring, muted and raised-hand marks; the presenter's camera or a screen
 * share large. Elements are kept across renders so videos do not restart.
 */

import { h, replaceChildren } from "../dom";
import { strings } from "../strings";
import type { Member } from "./connection";
import { layoutTiles } from "./model";

export interface GridSource {
  members: Member[];
  me: string | null;
  hands: string[];
  /** Members whose video the SFU paused for us (drawn without video). */
  paused: Set<string>;
  /** Screen shares offered (publisher ids), ours included when sharing. */
  screens: string[];
  /** A member's camera or screen stream (ours: the local preview). */
  video(participantId: string, screen: boolean): MediaStream | null;
  audio(participantId: string): MediaStream | null;
  /** Per-member speaking seen locally (our own microphone level). */
  speaking(participantId: string): boolean;
}

interface Tile {
  el: HTMLElement;
  video: HTMLVideoElement;
  label: HTMLElement;
  marks: HTMLElement;
}

export class VideoGrid {
  readonly el = h("section", { class: "video-grid", "data-testid": "video-grid", "aria-label": strings.videoGrid });
  private readonly audioBox = h("div", { class: "remote-audio", hidden: true });
  private tiles = new Map<string, Tile>();
  private audios = new Map<string, HTMLAudioElement>();

  constructor() {
    this.el.append(this.audioBox);
  }

  render(src: GridSource): void {
    const specs = layoutTiles(src.members, src.screens);
    const keep = new Set(specs.map((s) => s.key));
    for (const [key, tile] of this.tiles) {
      if (!keep.has(key)) {
        tile.video.srcObject = null;
        this.tiles.delete(key);
      }
    }
    const ordered: HTMLElement[] = [];
    for (const spec of specs) {
      const m = src.members.find((x) => x.participant_id === spec.participantId);
      if (!m) continue;
      let tile = this.tiles.get(spec.key);
      if (!tile) {
        const video = h("video", { autoplay: true, playsinline: true, muted: true });
        video.muted = true; // sound plays through the audio elements
        const label = h("div", { class: "tile-label" });
        const marks = h("div", { class: "tile-marks" });
        tile = {
          el: h("div", { class: "tile", "data-testid": "tile", "data-participant": m.participant_id, "data-screen": String(spec.screen) }, video, label, marks),
          video,
          label,
          marks,
        };
        this.tiles.set(spec.key, tile);
      }
      const stream = src.video(m.participant_id, spec.screen);
      const track = stream?.getVideoTracks()[0] ?? null;
      const current = (tile.video.srcObject as MediaStream | null)?.getVideoTracks()[0] ?? null;
      if (track !== current) tile.video.srcObject = track ? (m.participant_id === src.me && !spec.screen ? stream : new MediaStream([track])) : null;
      const showVideo = !!track && (spec.screen || (m.media.camera || m.participant_id === src.me)) && !src.paused.has(spec.key);
      tile.el.classList.toggle("large", spec.large);
      tile.el.classList.toggle("no-video", !showVideo);
      tile.el.classList.toggle("speaking", !spec.screen && (m.media.speaking || src.speaking(m.participant_id)));
      tile.el.classList.toggle("reconnecting", m.status === "reconnecting");
      tile.el.dataset.hasVideo = String(!!track);
      replaceChildren(
        tile.label,
        h("span", { class: "tile-name" }, spec.screen ? strings.screenOf(m.name) : m.name, m.participant_id === src.me ? ` (${strings.you})` : ""),
        spec.screen ? null : h("span", { class: "tile-hospital" }, strings.hospitalWithTier(m.hospital.name, m.hospital.tier)),
        spec.screen ? null : h("span", { class: "tile-role" }, strings.role(m.role)),
      );
      replaceChildren(
        tile.marks,
        !spec.screen && !m.media.mic ? h("span", { class: "mark muted", title: strings.micOff }, strings.mutedMark) : null,
        !spec.screen && src.hands.includes(m.participant_id) ? h("span", { class: "mark hand", "data-testid": "tile-hand", title: strings.handRaised }, strings.handMark) : null,
        m.status === "reconnecting" ? h("span", { class: "mark" }, strings.memberReconnecting) : null,
      );
      ordered.push(tile.el);
    }
    // Reorder only when needed (moving a playing video element restarts nothing, but keep it cheap).
    const now = [...this.el.children].filter((c) => c !== this.audioBox);
    if (now.length !== ordered.length || now.some((c, i) => c !== ordered[i])) {
      for (const c of now) if (!ordered.includes(c as HTMLElement)) c.remove();
      for (const t of ordered) this.el.insertBefore(t, this.audioBox);
    }
    this.el.classList.toggle("has-large", specs.some((s) => s.large));

    // Remote sound: one audio element per other publisher.
    const heard = new Set<string>();
    for (const m of src.members) {
      if (m.participant_id === src.me) continue;
      const stream = src.audio(m.participant_id);
      const track = stream?.getAudioTracks()[0];
      if (!track) continue;
      heard.add(m.participant_id);
      let audio = this.audios.get(m.participant_id);
      if (!audio) {
        audio = h("audio", { autoplay: true });
        this.audios.set(m.participant_id, audio);
        this.audioBox.append(audio);
      }
      const current = (audio.srcObject as MediaStream | null)?.getAudioTracks()[0];
      if (current !== track) audio.srcObject = stream;
    }
    for (const [pid, audio] of this.audios) {
      if (!heard.has(pid)) {
        audio.srcObject = null;
        audio.remove();
        this.audios.delete(pid);
      }
    }
  }

  dispose(): void {
    for (const t of this.tiles.values()) t.video.srcObject = null;
    for (const a of this.audios.values()) a.srcObject = null;
    this.tiles.clear();
    this.audios.clear();
  }
}
