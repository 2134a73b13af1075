/** The coordinator's day/week list of consultations, with cancel confirmed in place. */

import type { Consultation } from "../../api";
import { errorBox, h, replaceChildren } from "../../dom";
import { formatWindow } from "../../format";
import type { Page } from "../../router";
import { SessionExpired, type Session } from "../../session";
import { strings } from "../../strings";
import { topBar } from "../chrome";
import { errorText, loadInto } from "../load";
import { cancelConsultation, listConsultations } from "./api";
import { browserZone, dateIn, isDate, isValidZone, knownZones, viewRange, type View } from "../../time";

export const SCHEDULE_PATH = "/coordinator";

export function schedulePath(date?: string, view: View = "week", zone?: string): string {
  const q = new URLSearchParams();
  q.set("view", view);
  if (date) q.set("date", date);
  if (zone) q.set("zone", zone);
  return `${SCHEDULE_PATH}?${q}`;
}

export function editPath(id: number): string {
  return `/coordinator/consultations/${id}`;
}

export function zoneDatalist(id: string): HTMLDataListElement {
  return h("datalist", { id }, knownZones().map((z) => h("option", { value: z })));
}

function dayLabel(date: string): string {
  const [y, m, d] = date.split("-").map(Number);
  return new Intl.DateTimeFormat(strings.locale, { weekday: "long", day: "numeric", month: "long", year: "numeric", timeZone: "UTC" }).format(
    new Date(Date.UTC(y, m - 1, d)),
  );
}

function hostName(c: Consultation): string | null {
  const host = c.invitations.find((i) => i.role === "host" && i.user);
  return host?.user?.name ?? null;
}

export function schedulePage(session: Session, url: URL, signOut: () => void, navigate: (path: string) => void): Page {
  const view: View = url.searchParams.get("view") === "day" ? "day" : "week";
  const zoneParam = url.searchParams.get("zone") ?? "";
  const zone = isValidZone(zoneParam) ? zoneParam : browserZone();
  const dateParam = url.searchParams.get("date");
  const date = isDate(dateParam) ? dateParam : dateIn(Date.now(), zone);
  const range = viewRange(view, date, zone);
  const go = (d: string, v: View = view, z: string = zone) => navigate(schedulePath(d, v, z === browserZone() ? undefined : z));

  const zoneInput = h("input", {
    type: "text",
    value: zone,
    list: "coord-zones",
    class: "zone-input",
    "aria-label": strings.listTimeZone,
    "data-testid": "list-zone",
  });
  const zoneError = h("span", { class: "field-error", "aria-live": "polite" });
  zoneInput.addEventListener("change", () => {
    const z = zoneInput.value.trim();
    if (!isValidZone(z)) {
      zoneError.textContent = strings.unknownTimeZone;
      return;
    }
    go(date, view, z);
  });

  const stepDays = view === "week" ? 7 : 1;
  const shift = (n: number) => {
    const [y, m, d] = date.split("-").map(Number);
    const t = new Date(Date.UTC(y, m - 1, d + n));
    return t.toISOString().slice(0, 10);
  };
  const toolbar = h(
    "div",
    { class: "schedule-toolbar" },
    h(
      "div",
      { class: "toolgroup", role: "group" },
      h("button", { type: "button", "aria-pressed": String(view === "day"), onclick: () => go(date, "day"), "data-testid": "view-day" }, strings.viewDay),
      h("button", { type: "button", "aria-pressed": String(view === "week"), onclick: () => go(date, "week"), "data-testid": "view-week" }, strings.viewWeek),
    ),
    h(
      "div",
      { class: "toolgroup" },
      h("button", { type: "button", onclick: () => go(shift(-stepDays)), "data-testid": "period-prev" }, strings.previousPeriod),
      h("button", { type: "button", onclick: () => go(dateIn(Date.now(), zone)), "data-testid": "period-today" }, strings.today),
      h("button", { type: "button", onclick: () => go(shift(stepDays)), "data-testid": "period-next" }, strings.nextPeriod),
    ),
    h(
      "strong",
      { class: "period", "data-testid": "period" },
      view === "week" ? strings.weekOf(dayLabel(range.days[0]), dayLabel(range.days[6])) : dayLabel(date),
    ),
    h("label", { class: "inline" }, strings.listTimeZone, zoneInput, zoneError),
    zoneDatalist("coord-zones"),
    h("a", { class: "button primary", href: "/coordinator/new", "data-testid": "new-consultation" }, strings.newConsultation),
  );

  const list = h("div", { class: "schedule", "aria-busy": "true", "data-testid": "schedule" }, strings.loading);

  const row = (c: Consultation): HTMLElement => {
    const when = formatWindow(c.start, c.end, c.timezone);
    const host = hostName(c);
    const actions = h("div", { class: "row-actions" });
    const message = h("div", { class: "row-message", "aria-live": "polite" });
    const item = h(
      "li",
      { class: "consultation", "data-testid": "schedule-item", "data-consultation-id": c.id, "data-status": c.status },
      h(
        "div",
        { class: "consultation-main" },
        h("h3", {}, h("a", { href: editPath(c.id), "data-testid": "edit-link" }, c.title)),
        h("p", { class: "when" }, strings.timeWindow(when.start, when.end, when.zone)),
        h(
          "p",
          { class: "meta" },
          h("span", { class: `status status-${c.status}`, "data-testid": "status" }, strings.status(c.status)),
          " · ",
          `${strings.hostHospital}: ${strings.hospitalWithTier(c.host_hospital.name, c.host_hospital.tier)}`,
          host ? ` · ${strings.hostExpert}: ${host}` : "",
          ` · ${strings.invitees(c.invitations.length)} · ${strings.cases(c.cases.length)}`,
        ),
        message,
      ),
      actions,
    );
    const showActions = () => {
      replaceChildren(
        actions,
        h("a", { class: "button", href: editPath(c.id) }, strings.edit),
        c.status === "scheduled"
          ? h("button", { type: "button", class: "danger", onclick: confirm, "data-testid": "cancel" }, strings.cancelConsultation)
          : null,
      );
    };
    const confirm = () => {
      replaceChildren(message);
      const yes = h("button", { type: "button", class: "danger", "data-testid": "confirm-cancel" }, strings.confirmCancelYes);
      const no = h("button", { type: "button", onclick: showActions, "data-testid": "keep" }, strings.confirmCancelNo);
      yes.addEventListener("click", async () => {
        yes.disabled = no.disabled = true;
        yes.textContent = strings.cancelling;
        try {
          const updated = await cancelConsultation(session, c.id);
          item.replaceWith(row(updated));
        } catch (err) {
          if (err instanceof SessionExpired) return;
          replaceChildren(message, errorBox(errorText(err)));
          showActions();
        }
      });
      replaceChildren(actions, h("div", { class: "confirm", role: "group", "data-testid": "cancel-confirm" }, h("span", {}, strings.confirmCancel(c.title)), yes, no));
      no.focus();
    };
    showActions();
    return item;
  };

  loadInto(list, async () => {
    const page = await listConsultations(session, range.from, range.to);
    const byDay = new Map<string, Consultation[]>(range.days.map((d) => [d, []]));
    for (const c of page.items) byDay.get(dateIn(Date.parse(c.start), zone))?.push(c);
    const sections = range.days.map((d) => {
      const items = byDay.get(d) ?? [];
      return h(
        "section",
        { class: "schedule-day", "data-date": d, "data-testid": "schedule-day" },
        h("h2", {}, dayLabel(d)),
        items.length
          ? h("ul", { class: "consultation-list" }, items.map(row))
          : h("p", { class: "empty" }, strings.scheduleEmptyDay),
      );
    });
    return page.items.length ? sections : [h("p", { class: "empty" }, strings.scheduleEmpty), ...sections];
  });

  return {
    el: h(
      "div",
      { class: "page coordinator-page" },
      topBar(session, signOut),
      h("main", { class: "content wide" }, h("h1", {}, strings.scheduleTitle), toolbar, list),
    ),
  };
}
