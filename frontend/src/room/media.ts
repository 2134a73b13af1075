/**
 * The room's media through the SFU (docs/signaling.md, "Media sequence"): one publish peer
 * connection (camera, microphone, maybe a screen share as a second video) and one subscribe
 * connection whose offers come from the server. Our SDPs carry the candidates gathered within
 * GATHER_WAIT_MS (host ones at least); any later are trickled with `media:ice`;
 * the SFU's are inside its SDP. A failed connection starts both over with `media:restart`.
 */

import type { RoomConnection } from "./connection";
import { TrackMap, type TrackRef } from "./model";

export interface LocalState {
  mic: boolean;
  camera: boolean;
  screen: boolean;
}

export interface MediaEvents {
  /** The set of remote tracks (or their streams) changed. */
  onRemote(): void;
  /** Local media changed (toggles, screen share started/stopped). */
  onLocal(): void;
  /** A failure to show in place. */
  onError(message: string): void;
  /** Connection states of both peer connections. */
  onConnection(publish: string | null, subscribe: string | null): void;
}

type Candidate = RTCIceCandidateInit | null;

/** A subscribe offer with the mapping of exactly its SDP (`media:subscribe`'s ack when
 * `sdp` is not null, and `media:subscribe_offer`). */
export interface SubscribeOffer {
  sdp: string;
  version: number;
  tracks: TrackRef[];
}

export class MediaSession {
  private publishPc: RTCPeerConnection | null = null;
  private subscribePc: RTCPeerConnection | null = null;
  private screenSender: RTCRtpSender | null = null;
  private screenStream: MediaStream | null = null;
  /** Whose track each mid of the subscribe connection carries: tiles read only this. */
  private readonly trackMap = new TrackMap();
  /** The subscribe connection's received tracks, by the mid of their transceiver. */
  private remoteTracks = new Map<string, MediaStreamTrack>();
  private offers: Promise<void> = Promise.resolve();
  private restarting = false;
  private closed = false;
  private unsubscribe: (() => void)[] = [];
  readonly state: LocalState;

  constructor(
    private readonly connection: RoomConnection,
    /** The previewed camera and microphone (null for an observer). */
    public local: MediaStream | null,
    private canPublish: boolean,
    private readonly events: MediaEvents,
    /** The ICE servers (TURN) for each new peer connection: the newest join token's. */
    private readonly iceServers: () => Promise<RTCIceServer[]>,
  ) {
    this.state = {
      mic: !!local?.getAudioTracks().some((t) => t.enabled),
      camera: !!local?.getVideoTracks().some((t) => t.enabled),
      screen: false,
    };
    this.unsubscribe.push(
      connection.on<SubscribeOffer>("media:subscribe_offer", (body) => {
        this.offers = this.offers.then(() => this.answer(body));
      }),
      connection.on<{ can_publish: boolean }>("media:reset", (body) => {
        this.canPublish = body.can_publish;
        void this.rebuild(false);
      }),
    );
  }

  get publishing(): boolean {
    return this.canPublish && this.local !== null;
  }

  /** Both connections up: subscribe first, then publish (when allowed). */
  async start(): Promise<void> {
    await this.subscribe();
    if (this.publishing) await this.publish();
    this.sendState();
  }

  /** A remote video for a tile: a publisher's camera or screen share, while offered. */
  video(publisherId: string, screen: boolean): MediaStream | null {
    return this.stream(this.trackMap.videoMid(publisherId, screen));
  }

  /** The publisher's audio (played once per member, off-screen). */
  audio(publisherId: string): MediaStream | null {
    return this.stream(this.trackMap.audioMid(publisherId));
  }

  /** Publishers whose screen share is offered to us now. */
  screens(): string[] {
    return this.trackMap.screens().filter((pid) => this.remoteTracks.has(this.trackMap.videoMid(pid, true) ?? ""));
  }

  private stream(mid: string | null): MediaStream | null {
    const track = mid ? this.remoteTracks.get(mid) : undefined;
    return track && track.readyState === "live" ? new MediaStream([track]) : null;
  }

  setMic(on: boolean): void {
    for (const t of this.local?.getAudioTracks() ?? []) t.enabled = on;
    this.state.mic = on && !!this.local?.getAudioTracks().length;
    this.sendState();
    this.events.onLocal();
  }

  setCamera(on: boolean): void {
    for (const t of this.local?.getVideoTracks() ?? []) t.enabled = on;
    this.state.camera = on && !!this.local?.getVideoTracks().length;
    this.sendState();
    this.events.onLocal();
  }

  /** Our microphone's speaking state (from its level), sent with `media:state`. */
  private speaking = false;

  setSpeaking(on: boolean): void {
    if (this.speaking === on) return;
    this.speaking = on;
    this.sendState();
  }

  /** Screen share as the second video m-section; errors (refused, unsupported) thrown. */
  async startScreen(): Promise<void> {
    if (!this.publishPc || !this.publishing) throw new Error("not publishing");
    if (!navigator.mediaDevices?.getDisplayMedia) throw new Error("unsupported");
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const track = stream.getVideoTracks()[0];
    if (!track) throw new Error("no video");
    track.addEventListener("ended", () => void this.stopScreen());
    this.screenStream = stream;
    this.screenSender = this.publishPc.addTrack(track, stream);
    this.state.screen = true;
    await this.negotiatePublish();
    this.sendState();
    this.events.onLocal();
  }

  async stopScreen(): Promise<void> {
    if (!this.screenStream) return;
    for (const t of this.screenStream.getTracks()) t.stop();
    this.screenStream = null;
    if (this.publishPc && this.screenSender) {
      this.publishPc.removeTrack(this.screenSender);
      this.screenSender = null;
      try {
        await this.negotiatePublish();
      } catch (err) {
        this.events.onError(errorText(err));
      }
    }
    this.state.screen = false;
    this.sendState();
    this.events.onLocal();
  }

  get screenStreamLocal(): MediaStream | null {
    return this.screenStream;
  }

  close(): void {
    this.closed = true;
    for (const u of this.unsubscribe) u();
    this.closePcs();
    for (const t of this.screenStream?.getTracks() ?? []) t.stop();
    for (const t of this.local?.getTracks() ?? []) t.stop();
  }

  /** Sends `media:state` (observers: all false, as the server requires). */
  sendState(): void {
    if (this.closed) return;
    const payload = this.canPublish
      ? { mic: this.state.mic, camera: this.state.camera, screen: this.state.screen, speaking: this.speaking && this.state.mic }
      : { mic: false, camera: false, screen: false, speaking: false };
    void this.connection.request("media:state", payload).catch(() => undefined);
  }

  /** After a connection failed, and on a page's first start (a reload leaves the old
   * connections on the SFU): the SFU forgets both, we build new ones. */
  async restart(): Promise<void> {
    await this.rebuild(true);
  }

  private again: boolean | null = null;

  /** New peer connections (after `media:restart` when `askServer`); a rebuild asked for
   * while one runs runs after it. */
  private async rebuild(askServer: boolean): Promise<void> {
    if (this.closed) return;
    if (this.restarting) {
      this.again = (this.again ?? false) || askServer;
      return;
    }
    this.restarting = true;
    try {
      console.info(`media: ${askServer ? "restart" : "reset"} (publish: ${this.canPublish})`);
      if (askServer) {
        const ack = await this.connection.request<{ can_publish: boolean }>("media:restart");
        this.canPublish = ack.can_publish;
      }
      this.closePcs();
      if (!this.canPublish) {
        this.state.mic = this.state.camera = this.state.screen = false;
      }
      this.events.onRemote();
      this.events.onLocal();
      await this.start();
    } catch (err) {
      this.events.onError(errorText(err));
    } finally {
      this.restarting = false;
    }
    const again = this.again;
    this.again = null;
    if (again !== null) await this.rebuild(again);
  }

  private closePcs(): void {
    this.publishPc?.close();
    this.subscribePc?.close();
    this.publishPc = this.subscribePc = null;
    this.screenSender = null;
    // The next subscribe connection's mids are its own.
    this.trackMap.reset();
    this.remoteTracks.clear();
    this.offers = Promise.resolve();
    this.reportConnection();
  }

  private reportConnection(): void {
    this.events.onConnection(this.publishPc?.connectionState ?? null, this.subscribePc?.connectionState ?? null);
  }

  private newPc(kind: "publish" | "subscribe", iceServers: RTCIceServer[]): { pc: RTCPeerConnection; ready: (sdp: string) => void } {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", rtcpMuxPolicy: "require", iceServers });
    // Candidates wait until the SDP they belong to has been sent.
    let sent = false;
    const queue: Candidate[] = [];
    const send = (c: Candidate) =>
      void this.connection.request("media:ice", { pc: kind, candidate: c }).catch(() => undefined);
    pc.addEventListener("icecandidate", (e) => {
      const c: Candidate = e.candidate && e.candidate.candidate
        ? { candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex, usernameFragment: e.candidate.usernameFragment }
        : null;
      if (sent) send(c);
      else queue.push(c);
    });
    pc.addEventListener("connectionstatechange", () => {
      this.reportConnection();
      if (pc.connectionState === "failed" && !this.closed && (pc === this.publishPc || pc === this.subscribePc)) {
        console.info(`media: ${kind} connection failed`);
        void this.restart();
      }
    });
    return {
      pc,
      // Those already written into the SDP sent are not sent again.
      ready: (sdp: string) => {
        sent = true;
        for (const c of queue.splice(0)) if (!(c && sdp.includes(`a=${c.candidate}`))) send(c);
      },
    };
  }

  private subscribeReady: ((sdp: string) => void) | null = null;

  private async subscribe(): Promise<void> {
    const iceServers = await this.iceServers();
    if (this.closed) return;
    const { pc, ready } = this.newPc("subscribe", iceServers);
    this.subscribePc = pc;
    this.subscribeReady = ready;
    pc.addEventListener("track", (e) => {
      const mid = e.transceiver.mid;
      if (mid === null || pc !== this.subscribePc) return;
      this.remoteTracks.set(mid, e.track);
      e.track.addEventListener("ended", () => this.events.onRemote());
      this.events.onRemote();
    });
    const ack = await this.connection.request<SubscribeOffer | { sdp: null }>("media:subscribe");
    if (ack.sdp !== null) {
      const offer = ack as SubscribeOffer;
      this.offers = this.offers.then(() => this.answer(offer));
      await this.offers;
    }
  }

  private async answer(offer: SubscribeOffer): Promise<void> {
    const pc = this.subscribePc;
    if (!pc || this.closed) return;
    try {
      // The mapping goes in with its own SDP: just before it, so the SDP's track events
      // (which redraw tiles) find their mids; a mid keeps its publisher on one connection,
      // so nothing drawn changes owner. An offer older than the one applied is stale.
      if (!this.trackMap.apply(offer.version, offer.tracks)) return;
      await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      const sdp = await gatheredSdp(pc, answer.sdp ?? "");
      await this.connection.request("media:subscribe_answer", { sdp, version: offer.version });
      this.subscribeReady?.(sdp);
      this.events.onRemote();
    } catch (err) {
      this.events.onError(errorText(err));
    }
  }

  private publishReady: ((sdp: string) => void) | null = null;

  private async publish(): Promise<void> {
    if (!this.local) return;
    const iceServers = await this.iceServers();
    if (this.closed) return;
    const { pc, ready } = this.newPc("publish", iceServers);
    this.publishPc = pc;
    this.publishReady = ready;
    const audio = this.local.getAudioTracks()[0];
    const video = this.local.getVideoTracks()[0];
    if (audio) pc.addTransceiver(audio, { direction: "sendonly", streams: [this.local] });
    if (video) pc.addTransceiver(video, { direction: "sendonly", streams: [this.local] });
    await this.negotiatePublish();
  }

  private async negotiatePublish(): Promise<void> {
    const pc = this.publishPc;
    if (!pc) return;
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const local = await gatheredSdp(pc, offer.sdp ?? "");
    const ack = this.connection.request<{ sdp: string }>("media:publish", { sdp: local });
    this.publishReady?.(local);
    const { sdp } = await ack;
    if (pc.signalingState === "closed") return;
    await pc.setRemoteDescription({ type: "answer", sdp });
  }

  /** For a device change: the new camera or microphone replaces the sent one. */
  async replaceLocal(stream: MediaStream): Promise<void> {
    const old = this.local;
    this.local = stream;
    const video = stream.getVideoTracks()[0] ?? null;
    const audio = stream.getAudioTracks()[0] ?? null;
    if (video) video.enabled = this.state.camera;
    if (audio) audio.enabled = this.state.mic;
    if (this.publishPc) {
      for (const sender of this.publishPc.getSenders()) {
        if (sender === this.screenSender || !sender.track) continue;
        if (sender.track.kind === "video" && video) await sender.replaceTrack(video);
        if (sender.track.kind === "audio" && audio) await sender.replaceTrack(audio);
      }
    }
    for (const t of old?.getTracks() ?? []) if (!stream.getTracks().includes(t)) t.stop();
    this.events.onLocal();
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** How long an SDP waits for its candidates: host ones come within milliseconds. */
export const GATHER_WAIT_MS = 200;

/**
 * The local SDP once the candidates are gathered, or after ``GATHER_WAIT_MS`` with those
 * gathered by then (slower ones, relay candidates say, trickle after it). The SFU then checks
 * our host candidates as soon as it has the SDP, instead of a round trip of trickling later.
 */
export function gatheredSdp(pc: RTCPeerConnection, fallback: string, waitMs = GATHER_WAIT_MS): Promise<string> {
  const current = () => pc.localDescription?.sdp ?? fallback;
  if (pc.iceGatheringState === "complete") return Promise.resolve(current());
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", onChange);
      resolve(current());
    };
    const onChange = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, waitMs);
    pc.addEventListener("icegatheringstatechange", onChange);
  });
}
