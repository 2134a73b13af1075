/**
 * Invitees chosen from the hospital network: tier and hospital filters, a doctor search,
 * a room role for each, and whole hospitals (never as host). Before the consultation exists
 * the choice is kept here and sent with it; afterwards each change is an API call.
 */

import type { Consultation, Invitation } from "../../api";
import { errorBox, h, replaceChildren } from "../../dom";
import { ApiError, SessionExpired, type Hospital, type Session, type User } from "../../session";
import { strings } from "../../strings";
import { changeInvitation, hospitals, invite, ROOM_ROLES, TIERS, uninvite, users, type InvitationIn } from "./api";
import { errorText } from "../load";

export interface Invitee {
  kind: "user" | "hospital";
  id: number;
  name: string;
  detail: string;
  role: string;
  invitationId?: number;
}

export interface InviteesSection {
  el: HTMLElement;
  /** What to send with a new consultation. */
  invitations(): InvitationIn[];
  /** The user chosen as host (create mode): not offered as an invitee. */
  setHost(userId: number | null): void;
  showError(message: string | null): void;
  dispose(): void;
}

function roleSelect(value: string, allowHost: boolean, label: string, testid: string): HTMLSelectElement {
  return h(
    "select",
    { "aria-label": label, "data-testid": testid },
    ROOM_ROLES.filter((r) => allowHost || r !== "host").map((r) => h("option", { value: r, selected: r === value }, strings.role(r))),
  );
}

function fromInvitation(inv: Invitation, hospitalsById: Map<number, Hospital>): Invitee {
  if (inv.user) {
    const hosp = hospitalsById.get(inv.user.hospital_id);
    return {
      kind: "user",
      id: inv.user.id,
      name: inv.user.name,
      detail: hosp ? strings.hospitalWithTier(hosp.name, hosp.tier) : inv.user.email,
      role: inv.role,
      invitationId: inv.id,
    };
  }
  const hosp = inv.hospital!;
  return {
    kind: "hospital",
    id: hosp.id,
    name: strings.wholeHospital(hosp.name),
    detail: strings.tier(hosp.tier),
    role: inv.role,
    invitationId: inv.id,
  };
}

export function inviteesSection(
  session: Session,
  consultation: Consultation | null,
  onChanged: (c: Consultation | null) => void,
): InviteesSection {
  const live = consultation !== null && consultation.status === "scheduled";
  const readOnly = consultation !== null && consultation.status !== "scheduled";
  let invitees: Invitee[] = [];
  let hostUserId: number | null = null;
  let allHospitals: Hospital[] = [];
  const hospitalsById = new Map<number, Hospital>();
  let searchTimer: ReturnType<typeof setTimeout> | null = null;
  let searchGeneration = 0;

  const current = h("ul", { class: "invitee-list", "data-testid": "invitees" });
  const sectionError = h("div", { class: "field-error", "data-field": "invitations", "aria-live": "polite" });
  const tier = h(
    "select",
    { "aria-label": strings.tierFilter, "data-testid": "tier-filter" },
    h("option", { value: "" }, strings.allTiers),
    TIERS.map((t) => h("option", { value: t }, strings.tier(t))),
  );
  const hospitalSel = h("select", { "aria-label": strings.hospitalFilter, "data-testid": "hospital-filter" });
  const q = h("input", { type: "search", placeholder: strings.searchDoctors, "aria-label": strings.searchDoctors, "data-testid": "doctor-search" });
  const newRole = roleSelect("participant", true, strings.roomRole, "new-invitee-role");
  const results = h("ul", { class: "people-results", "data-testid": "doctor-results" });
  const resultsNote = h("p", { class: "muted small" });
  const hospitalRole = roleSelect("observer", false, strings.roomRole, "hospital-role");
  const inviteHospitalBtn = h("button", { type: "button", "data-testid": "invite-hospital" }, strings.inviteHospital);
  const hospitalRow = h("div", { class: "picker-row", hidden: true }, inviteHospitalBtn, hospitalRole);

  const showError = (message: string | null) => replaceChildren(sectionError, message ? errorBox(message) : null);

  const invitedUser = (id: number) => id === hostUserId || invitees.some((i) => i.kind === "user" && i.id === id);
  const invitedHospital = (id: number) => invitees.some((i) => i.kind === "hospital" && i.id === id);

  const renderCurrent = () => {
    replaceChildren(
      current,
      invitees.length
        ? invitees.map((inv) => {
            const sel = roleSelect(inv.role, inv.kind === "user", strings.roomRole, "invitee-role");
            sel.disabled = readOnly;
            const remove = h("button", { type: "button", class: "link", "data-testid": "remove-invitee", disabled: readOnly }, strings.removeInvitee);
            const li = h(
              "li",
              { class: "invitee", "data-testid": "invitee", "data-kind": inv.kind, "data-id": inv.id },
              h("div", { class: "invitee-name" }, h("strong", {}, inv.name), h("span", { class: "muted" }, inv.detail)),
              sel,
              remove,
            );
            sel.addEventListener("change", async () => {
              showError(null);
              if (!live || inv.invitationId === undefined) {
                inv.role = sel.value;
                return;
              }
              sel.disabled = true;
              try {
                await changeInvitation(session, consultation!.id, inv.invitationId, sel.value);
                inv.role = sel.value;
                onChanged(null);
              } catch (err) {
                if (err instanceof SessionExpired) return;
                sel.value = inv.role;
                showError(errorText(err));
              } finally {
                sel.disabled = false;
              }
            });
            remove.addEventListener("click", async () => {
              showError(null);
              if (live && inv.invitationId !== undefined) {
                remove.disabled = true;
                try {
                  await uninvite(session, consultation!.id, inv.invitationId);
                  onChanged(null);
                } catch (err) {
                  if (err instanceof SessionExpired) return;
                  remove.disabled = false;
                  showError(errorText(err));
                  return;
                }
              }
              invitees = invitees.filter((x) => x !== inv);
              renderCurrent();
              void search();
            });
            return li;
          })
        : h("li", { class: "empty" }, strings.noInvitees),
    );
  };

  const add = async (candidate: Invitee, button?: HTMLButtonElement) => {
    showError(null);
    if (live) {
      if (button) button.disabled = true;
      try {
        const body: InvitationIn = candidate.kind === "user" ? { user_id: candidate.id, role: candidate.role } : { hospital_id: candidate.id, role: candidate.role };
        const inv = await invite(session, consultation!.id, body);
        candidate.invitationId = inv.id;
        onChanged(null);
      } catch (err) {
        if (err instanceof SessionExpired) return;
        if (button) button.disabled = false;
        showError(err instanceof ApiError && err.code === "booking_clash" ? strings.bookingClash(err.message) : errorText(err));
        return;
      }
    }
    invitees.push(candidate);
    renderCurrent();
    renderHospitalRow();
    void search();
  };

  const renderHospitalRow = () => {
    const id = Number(hospitalSel.value);
    hospitalRow.hidden = !id || readOnly;
    inviteHospitalBtn.disabled = !id || invitedHospital(id);
  };

  let hospitalsGeneration = 0;
  const fillHospitals = async () => {
    const generation = ++hospitalsGeneration;
    try {
      const list = await hospitals(session, tier.value || undefined);
      if (generation !== hospitalsGeneration) return;
      const keep = hospitalSel.value;
      replaceChildren(
        hospitalSel,
        h("option", { value: "" }, strings.allHospitals),
        list.map((hs) => h("option", { value: hs.id, selected: String(hs.id) === keep }, strings.hospitalWithTier(hs.name, hs.tier))),
      );
    } catch (err) {
      if (err instanceof SessionExpired) return;
      showError(errorText(err));
    }
    renderHospitalRow();
  };

  const search = async () => {
    if (readOnly) return;
    const generation = ++searchGeneration;
    try {
      const page = await users(session, {
        hospital_id: Number(hospitalSel.value) || undefined,
        tier: tier.value || undefined,
        role: "doctor",
        q: q.value.trim() || undefined,
        limit: 30,
      });
      if (generation !== searchGeneration) return;
      replaceChildren(
        results,
        page.items.map((u: User) => {
          const taken = invitedUser(u.id);
          const btn = h("button", { type: "button", disabled: taken, "data-testid": "invite-doctor" }, taken ? strings.invited : strings.invite);
          btn.addEventListener("click", () =>
            void add(
              { kind: "user", id: u.id, name: u.name, detail: strings.hospitalWithTier(u.hospital.name, u.hospital.tier), role: newRole.value },
              btn,
            ),
          );
          return h(
            "li",
            { class: "person", "data-testid": "doctor", "data-user-id": u.id },
            h("div", { class: "invitee-name" }, h("strong", {}, u.name), h("span", { class: "muted" }, strings.hospitalWithTier(u.hospital.name, u.hospital.tier))),
            btn,
          );
        }),
      );
      resultsNote.textContent = strings.doctorsFound(page.items.length, page.total);
    } catch (err) {
      if (err instanceof SessionExpired || generation !== searchGeneration) return;
      replaceChildren(results, h("li", {}, errorBox(errorText(err))));
    }
  };

  tier.addEventListener("change", () => {
    hospitalSel.value = "";
    void fillHospitals().then(search);
  });
  hospitalSel.addEventListener("change", () => {
    renderHospitalRow();
    void search();
  });
  // Enter in the search box searches; it must not submit the consultation form around it.
  q.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      void search();
    }
  });
  q.addEventListener("input", () => {
    if (searchTimer) clearTimeout(searchTimer);
    searchTimer = setTimeout(() => void search(), 250);
  });
  inviteHospitalBtn.addEventListener("click", () => {
    const hs = hospitalsById.get(Number(hospitalSel.value));
    if (!hs) return;
    void add({ kind: "hospital", id: hs.id, name: strings.wholeHospital(hs.name), detail: strings.tier(hs.tier), role: hospitalRole.value }, inviteHospitalBtn);
  });

  // All hospitals once, to name the hospital of each invited user.
  void hospitals(session)
    .then((list) => {
      allHospitals = list;
      for (const hs of allHospitals) hospitalsById.set(hs.id, hs);
      if (consultation) invitees = consultation.invitations.map((i) => fromInvitation(i, hospitalsById));
      renderCurrent();
    })
    .catch((err) => {
      if (!(err instanceof SessionExpired)) showError(errorText(err));
    });
  if (!readOnly) void fillHospitals().then(search);
  renderCurrent();

  const picker = readOnly
    ? null
    : h(
        "div",
        { class: "picker", "data-testid": "invitee-picker" },
        h("div", { class: "picker-row" }, tier, hospitalSel, q, h("label", { class: "inline" }, strings.roomRole, newRole)),
        hospitalRow,
        results,
        resultsNote,
      );

  return {
    el: h("section", { class: "panel invitees", "data-testid": "invitees-section" }, h("h2", {}, strings.inviteesTitle), current, sectionError, picker),
    invitations: () =>
      invitees.map((i) => (i.kind === "user" ? { user_id: i.id, role: i.role } : { hospital_id: i.id, role: i.role })),
    setHost(userId) {
      hostUserId = userId;
      if (userId !== null && invitees.some((i) => i.kind === "user" && i.id === userId)) {
        invitees = invitees.filter((i) => !(i.kind === "user" && i.id === userId));
        renderCurrent();
      }
      void search();
    },
    showError,
    dispose() {
      if (searchTimer) clearTimeout(searchTimer);
      searchGeneration++;
    },
  };
}
