/**
 * Who is in the room, the lobby, and the host's controls on each member: admit or deny,
 * mute request, remove, set role, give viewer control (or take it back), lower a hand.
 */

import { errorBox, h, replaceChildren } from "../dom";
import { strings } from "../strings";
import type { Member, RoomConnection } from "./connection";

export interface PeopleState {
  members: Member[];
  lobby: Member[];
  me: string | null;
  isHost: boolean;
  /** Who holds control and who drives, as the server says (room/control.ts). */
  holder: string | null;
  driver: string | null;
  hands: string[];
}

export class PeoplePanel {
  readonly memberList = h("ul", { class: "members", "data-testid": "members" });
  private readonly lobbyList = h("ul", { class: "members lobby-list", "data-testid": "lobby-list" });
  readonly lobbySection = h("section", { class: "lobby-section", hidden: true }, h("h3", {}, strings.waitingToEnter), this.lobbyList);
  private readonly messages = h("div", { class: "people-messages" });
  readonly el = h("section", { class: "people" }, this.lobbySection, h("h3", {}, strings.participants), this.messages, this.memberList);

  constructor(private readonly connection: () => RoomConnection | null) {}

  /** Runs a host action; a refusal is shown in place under the list. */
  private async act(button: HTMLButtonElement | HTMLSelectElement | null, event: string, payload: object): Promise<void> {
    if (button) button.disabled = true;
    try {
      await this.connection()?.request(event, payload);
    } catch (err) {
      replaceChildren(this.messages, errorBox(strings.hostActionFailed(err instanceof Error ? err.message : String(err))));
    } finally {
      if (button) button.disabled = false;
    }
  }

  render(s: PeopleState): void {
    replaceChildren(this.messages);
    replaceChildren(
      this.memberList,
      s.members.map((m) => {
        const self = m.participant_id === s.me;
        const controls: HTMLElement[] = [];
        if (s.isHost && !self) {
          const mute = h("button", { type: "button", class: "small", "data-testid": "host-mute", title: strings.askToMute(m.name) }, strings.muteRequest);
          mute.addEventListener("click", () => void this.act(mute, "host:mute", { participant_id: m.participant_id, audio: true, video: false }));
          const remove = h("button", { type: "button", class: "small danger", "data-testid": "host-remove" }, strings.remove);
          remove.addEventListener("click", () => void this.act(remove, "host:remove", { participant_id: m.participant_id, reason: "" }));
          const role = h(
            "select",
            { class: "small", "data-testid": "host-role", "aria-label": strings.setRole(m.name) },
            ["presenter", "participant", "observer"].map((r) => h("option", { value: r, selected: m.role === r }, strings.role(r))),
          );
          role.addEventListener("change", () => void this.act(role, "host:set_role", { participant_id: m.participant_id, role: role.value }));
          const holds = s.holder === m.participant_id;
          const control = holds
            ? h("button", { type: "button", class: "small", "data-testid": "host-take-control" }, strings.takeBackControl)
            : h("button", { type: "button", class: "small", "data-testid": "host-give-control" }, strings.giveControl);
          control.addEventListener("click", () =>
            void (holds ? this.act(control, "control:take", {}) : this.act(control, "host:give_control", { participant_id: m.participant_id })),
          );
          controls.push(role, mute, control, remove);
          if (s.hands.includes(m.participant_id)) {
            const lower = h("button", { type: "button", class: "small", "data-testid": "host-lower-hand" }, strings.lowerHand);
            lower.addEventListener("click", () => void this.act(lower, "hand:lower", { participant_id: m.participant_id }));
            controls.push(lower);
          }
        }
        return h(
          "li",
          { class: `member ${m.status}`, "data-participant": m.participant_id, "data-role": m.role },
          h("span", { class: "member-name" }, m.name, self ? ` (${strings.you})` : "",
            s.hands.includes(m.participant_id) ? h("span", { class: "mark hand", "data-testid": "member-hand", title: strings.handRaised }, ` ${strings.handMark}`) : null),
          h("span", { class: "member-hospital" }, strings.hospitalWithTier(m.hospital.name, m.hospital.tier)),
          h(
            "span",
            { class: "member-role" },
            strings.role(m.role),
            m.participant_id === s.driver ? ` · ${strings.driverMark}` : m.participant_id === s.holder ? ` · ${strings.holderMark}` : "",
            m.status === "reconnecting" ? ` · ${strings.memberReconnecting}` : "",
          ),
          controls.length ? h("span", { class: "host-controls", "data-testid": "host-controls" }, controls) : null,
        );
      }),
    );

    this.lobbySection.hidden = !s.isHost || s.lobby.length === 0;
    replaceChildren(
      this.lobbyList,
      s.lobby.map((m) => {
        const admit = h("button", { type: "button", class: "primary", "data-testid": "admit" }, strings.admit);
        const deny = h("button", { type: "button", class: "danger", "data-testid": "deny" }, strings.deny);
        const item = h(
          "li",
          { class: "member", "data-participant": m.participant_id },
          h("span", { class: "member-name" }, m.name),
          h("span", { class: "member-hospital" }, strings.hospitalWithTier(m.hospital.name, m.hospital.tier)),
          h("span", { class: "host-controls" }, admit, deny),
        );
        const run = async (event: string) => {
          admit.disabled = deny.disabled = true;
          try {
            await this.connection()?.request(event, { participant_id: m.participant_id });
          } catch (err) {
            admit.disabled = deny.disabled = false;
            item.append(errorBox(strings.admitFailed(err instanceof Error ? err.message : String(err))));
          }
        };
        admit.addEventListener("click", () => void run("lobby:admit"));
        deny.addEventListener("click", () => void run("lobby:deny"));
        return item;
      }),
    );
  }
}
