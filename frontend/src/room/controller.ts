/**
 * The room page's side of the room channel: what the server's events change (members,
 * control, lobby, raised hands, link quality) and what the page must show again for each,
 * and the requests the page sends. The page builds the DOM and renders; this decides, and is
 * tested with a fake socket.
 */

import type { ServerEvents, ViewerStateIn } from "../wire/protocol";
import type { Member, Snapshot } from "./connection";
import * as control from "./control";
import type { ChatMessage, Forwarding, ReceiveStats } from "./model";
import type { CaseConsents } from "./consent";
import type { Minutes } from "./minutes";
import type { SavedRecord } from "./record";

/** The part of RoomConnection the controller uses. */
export interface RoomSocket {
  on<T>(event: string, handler: (payload: T) => void): () => void;
  request<T>(event: string, payload?: object): Promise<T>;
}

export interface RoomState {
  members: Member[];
  control: control.ControlState;
  me: string | null;
  myRole: string;
  isHost: boolean;
  lobby: Member[];
  hands: string[];
  forwarding: Forwarding | null;
  receiveStats: ReceiveStats | null;
}

/** What the page shows again, or hands on, when the room changes. */
export interface RoomViews {
  /** Who is in the room (people panel and video grid). */
  people(): void;
  /** The media bar (mic, camera, screen, hand). */
  toolbar(): void;
  /** The viewer panel: who drives, requests for control. */
  viewer(): void;
  /** The video tiles alone (forwarding changed). */
  grid(): void;
  quality(): void;
  viewerState(seq: number, state: ViewerStateIn): void;
  pointer(x: number | null, y: number | null): void;
  chat(message: ChatMessage): void;
  chatHistory(messages: ChatMessage[], me: string): void;
  record(record: SavedRecord): void;
  /** The minutes as saved (`minutes:updated`, the body of GET .../minutes). */
  minutes(minutes: Minutes): void;
  /** A case's consents changed (`consent:updated`: the states, no records). */
  consent(update: CaseConsents): void;
  /** The host turned this member's microphone and/or camera off. */
  muted(audio: boolean, video: boolean): void;
  /** A request the page sent was refused or got no answer. */
  requestFailed(err: unknown): void;
}

export class RoomController {
  private current: RoomState = {
    members: [],
    control: control.NO_CONTROL,
    me: null,
    myRole: "",
    isHost: false,
    lobby: [],
    hands: [],
    forwarding: null,
    receiveStats: null,
  };
  private socket: RoomSocket | null = null;
  private readonly cleanups: (() => void)[] = [];

  constructor(private readonly views: RoomViews) {}

  get state(): Readonly<RoomState> {
    return this.current;
  }

  /** The role the join token gives (before the room's snapshot says more). */
  joined(role: string): void {
    this.current.myRole = role;
    this.current.isHost = role === "host";
  }

  /** Admitted (again): the whole room as the server has it. */
  applySnapshot(snapshot: Snapshot): void {
    const s = this.current;
    s.members = snapshot.members;
    s.control = control.fromSnapshot(s.control, snapshot);
    s.me = snapshot.you;
    s.myRole = s.members.find((m) => m.participant_id === s.me)?.role ?? s.myRole;
    s.lobby = snapshot.lobby ?? [];
    s.hands = snapshot.hands ?? [];
    this.views.chatHistory((snapshot.chat ?? []) as ChatMessage[], snapshot.you);
    if (snapshot.viewer) this.views.viewerState(snapshot.viewer.seq, snapshot.viewer.state);
    this.renderAll();
  }

  /** Sends an event; a refusal goes to the page (`requestFailed`). */
  async request(event: string, payload: object = {}): Promise<void> {
    try {
      await this.socket?.request(event, payload);
    } catch (err) {
      this.views.requestFailed(err);
    }
  }

  listen(socket: RoomSocket): void {
    this.socket = socket;
    const s = this.current;
    const v = this.views;
    const peopleChanged = () => {
      v.people();
      v.viewer();
    };
    this.cleanups.push(
      socket.on<{ member: Member }>("presence:join", ({ member }) => {
        s.members = [...s.members.filter((m) => m.participant_id !== member.participant_id), member];
        peopleChanged();
      }),
      socket.on<{ member: Member }>("presence:update", ({ member }) => {
        s.members = s.members.map((m) => (m.participant_id === member.participant_id ? member : m));
        peopleChanged();
      }),
      socket.on<{ participant_id: string }>("presence:leave", ({ participant_id }) => {
        s.members = s.members.filter((m) => m.participant_id !== participant_id);
        s.hands = s.hands.filter((p) => p !== participant_id);
        peopleChanged();
      }),
      socket.on<{ participant_id: string; role: string }>("role:changed", ({ participant_id, role }) => {
        s.members = s.members.map((m) => (m.participant_id === participant_id ? { ...m, role } : m));
        if (participant_id === s.me) s.myRole = role;
        this.renderAll();
      }),
      socket.on<ServerEvents["viewer:state"]>("viewer:state", ({ seq, state }) => v.viewerState(seq, state)),
      socket.on<ServerEvents["viewer:pointer"]>("viewer:pointer", ({ x, y }) => v.pointer(x, y)),
      socket.on<control.ControlRequest>("control:requested", (r) => {
        s.control = control.requested(s.control, r);
        v.viewer();
      }),
      socket.on<control.RequestWithdrawn>("control:request_cancelled", (w) => {
        s.control = control.withdrawn(s.control, w);
        v.viewer();
      }),
      socket.on<{ lobby: Member[] }>("lobby:update", (b) => {
        s.lobby = b.lobby;
        v.people();
      }),
      socket.on<control.ControlChanged>("control:changed", (e) => {
        s.control = control.changed(s.control, e);
        peopleChanged();
      }),
      socket.on<{ hands: string[] }>("hands:update", (b) => {
        s.hands = b.hands;
        v.people();
        v.toolbar();
      }),
      socket.on<ChatMessage>("chat:message", (m) => v.chat(m)),
      socket.on<SavedRecord>("record:saved", (r) => v.record(r)),
      socket.on<Minutes>("minutes:updated", (m) => v.minutes(m)),
      socket.on<CaseConsents>("consent:updated", (c) => v.consent(c)),
      socket.on<{ audio: boolean; video: boolean }>("mute:requested", ({ audio, video }) => v.muted(audio, video)),
      socket.on<Forwarding>("media:forwarding", (f) => {
        s.forwarding = f;
        v.quality();
        v.grid();
      }),
      socket.on<{ participants: Record<string, { receive?: ReceiveStats | null }> }>("stats", (st) => {
        s.receiveStats = (s.me && st.participants?.[s.me]?.receive) || null;
        v.quality();
      }),
    );
  }

  dispose(): void {
    for (const cleanup of this.cleanups) cleanup();
    this.cleanups.length = 0;
    this.socket = null;
  }

  private renderAll(): void {
    this.views.people();
    this.views.toolbar();
    this.views.viewer();
  }
}
