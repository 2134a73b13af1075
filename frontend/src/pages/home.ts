import { myConsultations, type Consultation } from "../api";
import { h } from "../dom";
import { formatWindow } from "../format";
import type { Page } from "../router";
import type { Session } from "../session";
import { strings } from "../strings";
import { topBar } from "./chrome";
import { isStaff, SCHEDULE_PATH, startsOnSchedule } from "./coordinator";
import { loadInto } from "./load";
import { minutesPath } from "./minutes";

export function roomPath(id: number): string {
  return `/consultations/${id}/room`;
}

function card(c: Consultation): HTMLElement {
  const when = formatWindow(c.start, c.end, c.timezone);
  const role = c.my_room_role ?? null;
  return h(
    "li",
    { class: "consultation", "data-testid": "consultation", "data-consultation-id": c.id },
    h(
      "div",
      { class: "consultation-main" },
      h("h3", {}, c.title),
      h("p", { class: "when" }, strings.timeWindow(when.start, when.end, when.zone)),
      h(
        "p",
        { class: "meta" },
        h("span", { class: `status status-${c.status}` }, strings.status(c.status)),
        " · ",
        `${strings.hostHospital}: ${strings.hospitalWithTier(c.host_hospital.name, c.host_hospital.tier)}`,
        role ? ` · ${strings.yourRole}: ${strings.role(role)}` : "",
        ` · ${strings.cases(c.cases.length)}`,
      ),
    ),
    h(
      "div",
      { class: "consultation-actions" },
      c.status === "ended" || c.status === "live"
        ? h("a", { class: "button", href: minutesPath(c.id), "data-testid": "minutes-link" }, strings.minutesLink)
        : null,
      h("a", { class: "button primary", href: roomPath(c.id), "data-testid": "join" }, strings.join),
    ),
  );
}

export function homePage(session: Session, signOut: () => void): Page {
  if (startsOnSchedule(session.user)) return { el: h("div"), redirect: SCHEDULE_PATH };
  const list = h("div", { class: "consultations", "aria-busy": "true" }, strings.loading);
  loadInto(list, async () => {
    const items = await myConsultations(session);
    items.sort((a, b) => a.start.localeCompare(b.start));
    return [
      items.length
        ? h("ul", { class: "consultation-list", "data-testid": "consultation-list" }, items.map(card))
        : h("p", { class: "empty" }, strings.homeEmpty),
    ];
  });
  return {
    el: h(
      "div",
      { class: "page home-page" },
      topBar(
        session,
        signOut,
        ...(isStaff(session.user) ? [h("a", { href: SCHEDULE_PATH, "data-testid": "schedule-link" }, strings.scheduleTitle)] : []),
      ),
      h("main", { class: "content" }, h("h1", {}, strings.homeTitle), list),
    ),
  };
}
