import { describe, expect, it } from "vitest";

import * as control from "../src/room/control";
import { controlView, type ControlState } from "../src/room/control";
import { ViewerSync } from "../src/room/sync";
import { EMPTY_STATE, reduce } from "../src/viewer/state";
import { ViewerStore } from "../src/viewer/store";
import type { ViewerStateIn } from "../src/wire/protocol";

const HOST = "p-000000000001";
const PRESENTER = "p-000000000002";
const DOCTOR = "p-000000000003";
const OBSERVER = "p-000000000004";
const members = [
  { participant_id: HOST, name: "GS. An" },
  { participant_id: PRESENTER, name: "BS. Bình" },
  { participant_id: DOCTOR, name: "BS. Cường" },
  { participant_id: OBSERVER, name: "BS. Dung" },
];
const roles: Record<string, string> = { [HOST]: "host", [PRESENTER]: "presenter", [DOCTOR]: "participant", [OBSERVER]: "observer" };

/** The panel as `me` sees it. */
const seen = (state: ControlState, me: string, following = true) => controlView(state, { me, myRole: roles[me], members, following });
const actions = (state: ControlState, me: string, following = true) => seen(state, me, following).actions.map((a) => [a.kind, a.label, a.event]);

/** The room as it starts: nobody took control, the presenter drives (the snapshot says so). */
const start = () => control.fromSnapshot(control.NO_CONTROL, { control_holder: null, driver: PRESENTER });
const given = (state: ControlState, to: string) => control.changed(state, { holder: to, driver: to, by: HOST, reason: to === HOST ? "taken" : "given" });

describe("control: who drives, as the server says", () => {
  it("before anyone takes control the presenter drives and the host can take it in one action", () => {
    const s = start();
    expect(seen(s, PRESENTER)).toMatchObject({ driving: true, mode: "driving", status: "You are driving the shared view.", frameLabel: "You are driving", actions: [] });
    expect(seen(s, HOST)).toMatchObject({ driving: false, mode: "following", status: "Following: BS. Bình is driving the viewer.", frameLabel: "BS. Bình is driving" });
    expect(actions(s, HOST)).toEqual([["take", "Take control", "control:take"]]);
    expect(actions(s, DOCTOR)).toEqual([["request", "Request control", "control:request"]]);
    expect(seen(s, HOST).notice).toBeNull();
  });

  it("the host takes control: he drives and everyone reads who did it", () => {
    const s = given(start(), HOST);
    expect(seen(s, HOST)).toMatchObject({ driving: true, mode: "driving", notice: "You took control." });
    expect(actions(s, HOST)).toEqual([["release", "Release control", "control:release"]]);
    for (const pid of [PRESENTER, DOCTOR]) {
      expect(seen(s, pid)).toMatchObject({ driving: false, mode: "following", status: "Following: GS. An is driving the viewer.", frameLabel: "GS. An is driving", notice: "GS. An took control." });
      expect(actions(s, pid)).toEqual([["request", "Request control", "control:request"]]);
    }
  });

  it("the host takes control back from a doctor", () => {
    const toDoctor = given(start(), DOCTOR);
    expect(seen(toDoctor, DOCTOR)).toMatchObject({ driving: true, notice: "GS. An gave control to you." });
    expect(actions(toDoctor, DOCTOR)).toEqual([["release", "Release control", "control:release"]]);
    expect(seen(toDoctor, PRESENTER)).toMatchObject({ driving: false, notice: "GS. An gave control to BS. Cường.", frameLabel: "BS. Cường is driving" });
    expect(actions(toDoctor, HOST)).toEqual([["take", "Take back control", "control:take"]]);

    const back = given(toDoctor, HOST);
    expect(seen(back, HOST).driving).toBe(true);
    expect(seen(back, DOCTOR)).toMatchObject({ driving: false, status: "Following: GS. An is driving the viewer.", notice: "GS. An took control." });
  });

  it("a doctor requests: everyone sees it, the host can answer, the grant clears it", () => {
    const asked = control.requested(start(), { participant_id: DOCTOR, name: "BS. Cường" });
    expect(seen(asked, HOST).requests).toEqual([{ participant_id: DOCTOR, text: "BS. Cường asks for control of the viewer.", answer: true }]);
    expect(seen(asked, PRESENTER).requests).toEqual([{ participant_id: DOCTOR, text: "BS. Cường asks for control of the viewer.", answer: false }]);
    expect(seen(asked, PRESENTER).notice).toBe("BS. Cường asks for control of the viewer.");
    expect(seen(asked, DOCTOR).notice).toBe("You asked the host for control of the viewer.");
    expect(actions(asked, DOCTOR)).toEqual([["cancel", "Cancel request", "control:cancel"]]);

    const granted = given(asked, DOCTOR);
    expect(seen(granted, HOST).requests).toEqual([]);
    expect(seen(granted, DOCTOR).driving).toBe(true);
    expect(seen(granted, OBSERVER)).toMatchObject({ frameLabel: "BS. Cường is driving", notice: "GS. An gave control to BS. Cường." });
  });

  it("a withdrawn request leaves no trace; a declined one says so", () => {
    const asked = control.requested(start(), { participant_id: DOCTOR, name: "BS. Cường" });
    const cancelled = control.withdrawn(asked, { participant_id: DOCTOR, by: DOCTOR });
    expect(seen(cancelled, HOST)).toMatchObject({ requests: [], notice: null });
    expect(actions(cancelled, DOCTOR)).toEqual([["request", "Request control", "control:request"]]);

    const declined = control.withdrawn(asked, { participant_id: DOCTOR, by: HOST });
    expect(seen(declined, DOCTOR)).toMatchObject({ requests: [], notice: "The host declined your request for control." });
    expect(seen(declined, PRESENTER).notice).toBe("The host declined BS. Cường's request for control.");
  });

  it("the holder releases: back to the presenter", () => {
    const released = control.changed(given(start(), DOCTOR), { holder: null, driver: PRESENTER, by: DOCTOR, reason: "released" });
    expect(seen(released, PRESENTER)).toMatchObject({ driving: true, notice: "BS. Cường released control." });
    expect(seen(released, DOCTOR)).toMatchObject({ driving: false, notice: "You released control.", frameLabel: "BS. Bình is driving" });
    expect(actions(released, DOCTOR)).toEqual([["request", "Request control", "control:request"]]);
    expect(actions(released, HOST)).toEqual([["take", "Take control", "control:take"]]);
  });

  it("the holder drops: the next in line drives and the room is told; leaving ends the hold", () => {
    const away = control.changed(given(start(), DOCTOR), { holder: DOCTOR, driver: PRESENTER, by: null, reason: "reconnecting" });
    expect(seen(away, PRESENTER)).toMatchObject({ driving: true, notice: "The driver's connection dropped." });
    expect(seen(away, HOST)).toMatchObject({
      status: "Following: BS. Bình is driving the viewer. BS. Cường has control and is reconnecting.",
      frameLabel: "BS. Bình is driving",
    });
    expect(actions(away, HOST)).toEqual([["take", "Take back control", "control:take"]]);

    const back = control.changed(away, { holder: DOCTOR, driver: DOCTOR, by: null, reason: "resumed" });
    expect(seen(back, HOST)).toMatchObject({ status: "Following: BS. Cường is driving the viewer.", notice: null });

    const left = control.changed(back, { holder: null, driver: PRESENTER, by: null, reason: "left" });
    expect(seen(left, HOST)).toMatchObject({ frameLabel: "BS. Bình is driving", notice: "The driver left the room." });
    expect(actions(left, HOST)).toEqual([["take", "Take control", "control:take"]]);
  });

  it("an observer follows and is offered neither request nor take", () => {
    const s = given(start(), HOST);
    expect(seen(s, OBSERVER)).toMatchObject({ driving: false, mode: "following", actions: [] });
    const away = seen(s, OBSERVER, false);
    expect(away.actions.map((a) => a.kind)).toEqual(["follow"]);
  });

  it("looking around shows the way back to the driver's view; the driver never looks around", () => {
    const s = given(start(), HOST);
    expect(seen(s, DOCTOR, false)).toMatchObject({
      mode: "looking",
      status: "You are looking around on your own; GS. An is driving the viewer.",
      frameLabel: "Looking around · GS. An is driving",
    });
    expect(actions(s, DOCTOR, false)[0]).toEqual(["follow", "Back to GS. An's view", null]);
    expect(seen(s, HOST, false)).toMatchObject({ mode: "driving", driving: true });
    const nobody = control.fromSnapshot(control.NO_CONTROL, { control_holder: null, driver: null });
    expect(seen(nobody, DOCTOR)).toMatchObject({ mode: "nobody", status: "Following the shared view; nobody is driving it now.", frameLabel: "Nobody is driving" });
  });

  it("drives exactly when the server names this screen the driver, whatever the roles", () => {
    // The server's rule may pick anyone (signaling/viewer.py): the client takes its word.
    const doctorDrives = control.fromSnapshot(control.NO_CONTROL, { control_holder: null, driver: DOCTOR });
    expect(seen(doctorDrives, DOCTOR).driving).toBe(true);
    expect(seen(doctorDrives, PRESENTER).driving).toBe(false);
    const nobody = control.fromSnapshot(control.NO_CONTROL, { control_holder: HOST, driver: null });
    for (const pid of [HOST, PRESENTER, DOCTOR]) expect(seen(nobody, pid).driving).toBe(false);
  });

  it("a request from someone who left is not shown", () => {
    const asked = control.requested(start(), { participant_id: "p-0000000000ff", name: "BS. Gone" });
    expect(seen(asked, HOST).requests).toEqual([]);
  });
});

describe("the driver's own changes go to the room", () => {
  const SERIES = "1.2.840.1.1";
  const series = (index: number) => reduce(EMPTY_STATE, { type: "series", studyUID: "1.2.840.1", seriesUID: SERIES, imageCount: 200, imageIndex: index });

  it("a host who was looking around and takes control is followed at once, and so is his scrolling", async () => {
    const sent: ViewerStateIn[] = [];
    const store = new ViewerStore(series(10));
    const sync = new ViewerSync(store, { send: (w) => (sent.push(w), Promise.resolve({ seq: 100 + sent.length })) }, { intervalMs: 0 });
    store.recordShared({ seq: 1, state: series(10) });
    store.dispatch({ type: "index", index: 40 }); // not the driver yet: only this screen moves
    expect(store.following).toBe(false);
    expect(sent).toEqual([]);

    sync.setDriving(seen(given(start(), HOST), HOST).driving);
    expect(store.following).toBe(true);
    expect(sent.map((w) => w.viewports[0].image_index)).toEqual([40]);
    await Promise.resolve();
    store.dispatch({ type: "scroll", delta: 3 });
    expect(sent.map((w) => w.viewports[0].image_index)).toEqual([40, 43]);
  });
});
