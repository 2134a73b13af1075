import { describe, expect, it } from "vitest";

import type { Member, Snapshot } from "../src/room/connection";
import { RoomController, type RoomSocket, type RoomViews } from "../src/room/controller";

/** The room channel, as the controller sees it: the server's events fired by hand. */
class FakeSocket implements RoomSocket {
  readonly handlers = new Map<string, Set<(payload: unknown) => void>>();
  readonly sent: [string, object][] = [];
  refuse: Error | null = null;

  on<T>(event: string, handler: (payload: T) => void): () => void {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    const fn = handler as (payload: unknown) => void;
    this.handlers.get(event)!.add(fn);
    return () => this.handlers.get(event)!.delete(fn);
  }

  async request<T>(event: string, payload: object = {}): Promise<T> {
    this.sent.push([event, payload]);
    if (this.refuse) throw this.refuse;
    return {} as T;
  }

  emit(event: string, payload: unknown): void {
    for (const fn of this.handlers.get(event) ?? []) fn(payload);
  }

  get listening(): number {
    return [...this.handlers.values()].reduce((n, s) => n + s.size, 0);
  }
}

function member(participant_id: string, role = "participant", name = participant_id): Member {
  return {
    participant_id, user_id: 1, name, role, status: "connected",
    hospital: { code: "BM", name: "Bạch Mai", tier: "central" },
    media: { mic: true, camera: true, screen: false, speaking: false },
  };
}

function snapshot(over: Partial<Snapshot> = {}): Snapshot {
  return {
    consultation_id: 1, you: "p-me", members: [member("p-me", "presenter"), member("p-host", "host")], hands: [], control_holder: null,
    driver: "p-me", auto_admit: true, chat: [], lobby: [], viewer: null, ...over,
  };
}

/** Every view call, by name, with its arguments. */
function recordingViews() {
  const calls: unknown[][] = [];
  const views = new Proxy({} as RoomViews, {
    get: (_, name: string) => (...args: unknown[]) => void calls.push([name, ...args]),
  });
  const names = () => calls.map((c) => c[0]);
  return { views, calls, names, clear: () => (calls.length = 0) };
}

describe("room controller", () => {
  it("the snapshot sets the room and shows everything, the chat history and shared view included", () => {
    const v = recordingViews();
    const room = new RoomController(v.views);
    room.joined("participant");
    expect(room.state).toMatchObject({ myRole: "participant", isHost: false });
    room.applySnapshot(snapshot({ viewer: { seq: 4, by: "p-host", state: { viewports: [] } as never }, chat: [{ id: 1 }], hands: ["p-host"] }));
    expect(room.state).toMatchObject({ me: "p-me", myRole: "presenter", hands: ["p-host"] });
    expect(room.state.control.driver).toBe("p-me");
    expect(v.names()).toEqual(["chatHistory", "viewerState", "people", "toolbar", "viewer"]);
    expect(v.calls[0]).toEqual(["chatHistory", [{ id: 1 }], "p-me"]);
    expect(v.calls[1][1]).toBe(4);
  });

  it("presence: joins, updates and leaves change the members (a leaver's hand goes down)", () => {
    const v = recordingViews();
    const room = new RoomController(v.views);
    const socket = new FakeSocket();
    room.listen(socket);
    room.applySnapshot(snapshot({ hands: ["p-host"] }));
    v.clear();
    socket.emit("presence:join", { member: member("p-new") });
    socket.emit("presence:join", { member: member("p-new", "participant", "again") });
    expect(room.state.members.map((m) => [m.participant_id, m.name])).toEqual([["p-me", "p-me"], ["p-host", "p-host"], ["p-new", "again"]]);
    socket.emit("presence:update", { member: { ...member("p-host", "host"), status: "reconnecting" } });
    expect(room.state.members[1].status).toBe("reconnecting");
    socket.emit("presence:leave", { participant_id: "p-host" });
    expect(room.state.members.map((m) => m.participant_id)).toEqual(["p-me", "p-new"]);
    expect(room.state.hands).toEqual([]);
    expect(v.names()).toEqual(Array(4).fill(["people", "viewer"]).flat());
  });

  it("a role change of mine is my role; everything is shown again", () => {
    const v = recordingViews();
    const room = new RoomController(v.views);
    const socket = new FakeSocket();
    room.listen(socket);
    room.applySnapshot(snapshot());
    v.clear();
    socket.emit("role:changed", { participant_id: "p-me", role: "observer" });
    expect(room.state.myRole).toBe("observer");
    expect(room.state.members[0].role).toBe("observer");
    socket.emit("role:changed", { participant_id: "p-host", role: "participant" });
    expect(room.state.myRole).toBe("observer");
    expect(v.names()).toEqual(["people", "toolbar", "viewer", "people", "toolbar", "viewer"]);
  });

  it("control: requests, withdrawals and changes go through room/control.ts to the viewer panel", () => {
    const v = recordingViews();
    const room = new RoomController(v.views);
    const socket = new FakeSocket();
    room.listen(socket);
    room.applySnapshot(snapshot());
    v.clear();
    socket.emit("control:requested", { participant_id: "p-host", name: "p-host" });
    expect(room.state.control.requests.map((r) => r.participant_id)).toEqual(["p-host"]);
    socket.emit("control:request_cancelled", { participant_id: "p-host", reason: "withdrawn" });
    expect(room.state.control.requests).toEqual([]);
    socket.emit("control:changed", { holder: "p-host", driver: "p-host", by: "p-host", reason: "taken" });
    expect(room.state.control).toMatchObject({ holder: "p-host", driver: "p-host" });
    expect(v.names()).toEqual(["viewer", "viewer", "people", "viewer"]);
  });

  it("hands, lobby, forwarding and stats are kept and shown where they show", () => {
    const v = recordingViews();
    const room = new RoomController(v.views);
    const socket = new FakeSocket();
    room.listen(socket);
    room.applySnapshot(snapshot());
    v.clear();
    socket.emit("hands:update", { hands: ["p-me"] });
    socket.emit("lobby:update", { lobby: [member("p-wait")] });
    socket.emit("media:forwarding", { link_state: "reduced", paused: [] });
    socket.emit("stats", { participants: { "p-me": { receive: { fraction_lost: 0.1 } }, "p-host": { receive: { fraction_lost: 0.9 } } } });
    expect(room.state.hands).toEqual(["p-me"]);
    expect(room.state.lobby.map((m) => m.participant_id)).toEqual(["p-wait"]);
    expect(room.state.forwarding).toMatchObject({ link_state: "reduced" });
    expect(room.state.receiveStats).toEqual({ fraction_lost: 0.1 });
    expect(v.names()).toEqual(["people", "toolbar", "people", "quality", "grid", "quality"]);
    socket.emit("stats", { participants: {} });
    expect(room.state.receiveStats).toBeNull();
  });

  it("hands the viewer, chat, record, minutes and mute events on as they come", () => {
    const v = recordingViews();
    const room = new RoomController(v.views);
    const socket = new FakeSocket();
    room.listen(socket);
    socket.emit("viewer:state", { seq: 7, state: { viewports: [] } });
    socket.emit("viewer:pointer", { x: 0.5, y: null });
    socket.emit("chat:message", { id: 3 });
    socket.emit("record:saved", { version: 2 });
    socket.emit("minutes:updated", { version: 1, revision: 3 });
    socket.emit("mute:requested", { audio: true, video: false });
    expect(v.calls).toEqual([
      ["viewerState", 7, { viewports: [] }],
      ["pointer", 0.5, null],
      ["chat", { id: 3 }],
      ["record", { version: 2 }],
      ["minutes", { version: 1, revision: 3 }],
      ["muted", true, false],
    ]);
  });

  it("sends requests on the socket; a refusal goes to the page", async () => {
    const v = recordingViews();
    const room = new RoomController(v.views);
    const socket = new FakeSocket();
    await room.request("hand:raise"); // not connected yet: nothing to send on
    room.listen(socket);
    await room.request("hand:raise");
    socket.refuse = new Error("rate limited");
    await room.request("hand:lower", { x: 1 });
    expect(socket.sent).toEqual([["hand:raise", {}], ["hand:lower", { x: 1 }]]);
    expect(v.calls).toEqual([["requestFailed", socket.refuse]]);
  });

  it("dispose stops listening", () => {
    const room = new RoomController(recordingViews().views);
    const socket = new FakeSocket();
    room.listen(socket);
    expect(socket.listening).toBeGreaterThan(10);
    room.dispose();
    expect(socket.listening).toBe(0);
  });
});
