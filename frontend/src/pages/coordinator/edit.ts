/** Create or edit a consultation: title, time window in its time zone, host, invitees, cases. */

import type { Consultation } from "../../api";
import { errorBox, h, replaceChildren } from "../../dom";
import type { Page } from "../../router";
import { ApiError, SessionExpired, type Session, type User } from "../../session";
import { strings } from "../../strings";
import { topBar } from "../chrome";
import { createConsultation, getConsultation, hospitals, patchConsultation, users, type ConsultationIn } from "./api";
import { casesSection } from "./cases";
import { inviteesSection } from "./invitees";
import { errorText } from "../load";
import { editPath, schedulePath, zoneDatalist } from "./list";
import { errorField, type FormField } from "./logic";
import { addDays, browserZone, dateIn, isoToZoned, isValidZone, zonedToIso } from "../../time";

export async function editPage(
  session: Session,
  id: number | null,
  url: URL,
  signOut: () => void,
  navigate: (path: string, options?: { replace?: boolean }) => void,
): Promise<Page> {
  const shell = (...children: (Node | string)[]) =>
    h("div", { class: "page coordinator-page" }, topBar(session, signOut), h("main", { class: "content wide" }, ...children));

  let consultation: Consultation | null = null;
  if (id !== null) {
    try {
      consultation = await getConsultation(session, id);
    } catch (err) {
      if (err instanceof SessionExpired) return { el: shell() };
      const text = err instanceof ApiError && err.status === 404 ? strings.roomNotFound : errorText(err);
      return {
        el: shell(
          h("h1", {}, strings.editConsultationTitle),
          errorBox(text, { label: strings.retry, run: () => navigate(url.pathname + url.search, { replace: true }) }),
          h("p", {}, h("a", { href: schedulePath() }, strings.backToSchedule)),
        ),
      };
    }
  }
  const editable = consultation === null || consultation.status === "scheduled";
  const zone0 = consultation?.timezone ?? browserZone();
  const tomorrow = addDays(dateIn(Date.now(), zone0), 1);

  // ---- fields ---------------------------------------------------------------------------
  const title = h("input", { type: "text", required: true, maxlength: 200, value: consultation?.title ?? "", "data-testid": "title" });
  const description = h("textarea", { rows: 2, maxlength: 10000, "data-testid": "description" }, consultation?.description ?? "");
  const start = h("input", {
    type: "datetime-local",
    required: true,
    value: consultation ? isoToZoned(consultation.start, zone0) : `${tomorrow}T09:00`,
    "data-testid": "start",
  });
  const end = h("input", {
    type: "datetime-local",
    required: true,
    value: consultation ? isoToZoned(consultation.end, zone0) : `${tomorrow}T10:00`,
    "data-testid": "end",
  });
  const zone = h("input", { type: "text", required: true, list: "edit-zones", value: zone0, spellcheck: false, "data-testid": "timezone" });
  const hostHospital = h("select", { required: true, "data-testid": "host-hospital" }, h("option", { value: "" }, strings.chooseHospital));
  const hostExpert = h("select", { required: true, "data-testid": "host-expert" }, h("option", { value: "" }, strings.chooseExpert));

  const slots = new Map<FormField, HTMLElement>();
  const slot = (f: FormField) => {
    const el = h("div", { class: "field-error", "data-field": f, "aria-live": "polite" });
    slots.set(f, el);
    return el;
  };
  const clearErrors = () => {
    for (const el of slots.values()) replaceChildren(el);
    invitees.showError(null);
  };
  const showFieldError = (f: FormField, message: string) => {
    if (f === "invitations") invitees.showError(message);
    else replaceChildren(slots.get(f)!, errorBox(message));
  };

  const invitees = inviteesSection(session, consultation, () => undefined);

  // Host hospital and expert: doctors of the chosen hospital.
  const hostId = consultation?.invitations.find((i) => i.role === "host" && i.user)?.user ?? null;
  const fillExperts = async () => {
    const hid = Number(hostHospital.value);
    replaceChildren(hostExpert, h("option", { value: "" }, strings.chooseExpert));
    invitees.setHost(null);
    if (!hid) return;
    try {
      const page = await users(session, { hospital_id: hid, role: "doctor", limit: 200 });
      if (!page.items.length) {
        replaceChildren(slots.get("host_user_id")!, h("span", { class: "muted" }, strings.noDoctors));
        return;
      }
      for (const u of page.items as User[]) hostExpert.append(h("option", { value: u.id }, u.name));
      if (page.items.length === 1) {
        hostExpert.value = String(page.items[0].id);
        invitees.setHost(page.items[0].id);
      }
    } catch (err) {
      if (!(err instanceof SessionExpired)) showFieldError("host_user_id", errorText(err));
    }
  };
  hostHospital.addEventListener("change", () => {
    replaceChildren(slots.get("host_hospital_id")!);
    if (consultation === null) void fillExperts();
  });
  hostExpert.addEventListener("change", () => invitees.setHost(Number(hostExpert.value) || null));

  // The current host hospital is there at once (a save before the list arrives keeps it).
  if (consultation) {
    const hs = consultation.host_hospital;
    hostHospital.append(h("option", { value: hs.id, selected: true }, strings.hospitalWithTier(hs.name, hs.tier)));
  }
  void hospitals(session)
    .then((list) => {
      const keep = hostHospital.value;
      replaceChildren(
        hostHospital,
        h("option", { value: "" }, strings.chooseHospital),
        list.map((hs) => h("option", { value: hs.id, selected: String(hs.id) === keep }, strings.hospitalWithTier(hs.name, hs.tier))),
      );
    })
    .catch((err) => {
      if (!(err instanceof SessionExpired)) showFieldError("host_hospital_id", errorText(err));
    });

  const field = (label: string, input: HTMLElement, f: FormField, hint?: string) =>
    h("label", { class: "field" }, h("span", { class: "label" }, label), input, hint ? h("span", { class: "muted small" }, hint) : null, slot(f));

  const submit = h("button", { type: "submit", class: "primary", "data-testid": "save" }, consultation ? strings.saveChanges : strings.createConsultation);
  const formMessage = h("div", { class: "form-message", "aria-live": "polite", "data-testid": "form-message" });
  if (url.searchParams.get("created") === "1") replaceChildren(formMessage, h("div", { class: "notice ok" }, strings.created));
  if (!editable && consultation) replaceChildren(formMessage, h("div", { class: "notice" }, strings.notEditable(strings.status(consultation.status))));

  const hostField = consultation
    ? h("div", { class: "field" }, h("span", { class: "label" }, strings.fieldHostExpert), h("strong", { "data-testid": "host-name" }, hostId?.name ?? "—"), h("span", { class: "muted small" }, strings.hostChangeHint), slot("host_user_id"))
    : field(strings.fieldHostExpert, hostExpert, "host_user_id");

  const form = h(
    "form",
    { class: "consultation-form panel", "data-testid": "consultation-form", novalidate: true },
    field(strings.fieldTitle, title, "title"),
    field(strings.fieldDescription, description, "description"),
    h("div", { class: "form-grid" }, field(strings.fieldStart, start, "start"), field(strings.fieldEnd, end, "end"), field(strings.fieldTimeZone, zone, "timezone")),
    zoneDatalist("edit-zones"),
    h("div", { class: "form-grid" }, field(strings.fieldHostHospital, hostHospital, "host_hospital_id"), hostField),
    consultation ? null : invitees.el,
    slot("form"),
    h("div", { class: "form-actions" }, editable ? submit : null, formMessage),
  );
  if (!editable) for (const el of form.querySelectorAll("input, select, textarea")) (el as HTMLInputElement).disabled = true;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    if (!consultation || url.searchParams.get("created") !== "1") replaceChildren(formMessage);
    // Checked here first, so the user sees the field at fault without a round trip.
    let bad = false;
    const need = (ok: boolean, f: FormField, message: string) => {
      if (!ok) {
        showFieldError(f, message);
        bad = true;
      }
    };
    const tz = zone.value.trim();
    need(title.value.trim() !== "", "title", strings.required);
    need(start.value !== "", "start", strings.required);
    need(end.value !== "", "end", strings.required);
    need(isValidZone(tz), "timezone", strings.unknownTimeZone);
    need(hostHospital.value !== "", "host_hospital_id", strings.required);
    if (!consultation) need(hostExpert.value !== "", "host_user_id", strings.required);
    if (bad) return;
    const startIso = zonedToIso(start.value, tz);
    const endIso = zonedToIso(end.value, tz);
    if (Date.parse(endIso) <= Date.parse(startIso)) {
      showFieldError("end", strings.endBeforeStart);
      return;
    }
    submit.disabled = true;
    submit.textContent = strings.saving;
    // What creating and editing both set; the host expert and the invitees are chosen when
    // creating (afterwards through the invitations).
    const fields: Omit<ConsultationIn, "host_user_id" | "invitations"> = {
      title: title.value.trim(),
      description: description.value,
      start: startIso,
      end: endIso,
      timezone: tz,
      host_hospital_id: Number(hostHospital.value),
    };
    try {
      if (!consultation) {
        const created = await createConsultation(session, {
          ...fields,
          host_user_id: Number(hostExpert.value),
          invitations: invitees.invitations(),
        });
        navigate(`${editPath(created.id)}?created=1`, { replace: true });
        return;
      }
      consultation = await patchConsultation(session, consultation.id, fields);
      replaceChildren(formMessage, h("span", { class: "ok-text", "data-testid": "saved" }, strings.saved));
      back.setAttribute("href", schedulePath(dateIn(Date.parse(consultation.start), consultation.timezone), "week", consultation.timezone));
    } catch (err) {
      if (err instanceof SessionExpired) return;
      const f = errorField(err);
      const text =
        err instanceof ApiError && err.code === "booking_clash"
          ? strings.bookingClash(err.message)
          : err instanceof ApiError && f !== "form"
            ? err.message
            : errorText(err);
      if (err instanceof ApiError && err.code === "booking_clash" && consultation) showFieldError("start", text);
      else showFieldError(f, text);
    } finally {
      submit.disabled = false;
      submit.textContent = consultation ? strings.saveChanges : strings.createConsultation;
    }
  });

  const back = h(
    "a",
    {
      href: consultation ? schedulePath(dateIn(Date.parse(consultation.start), consultation.timezone), "week", consultation.timezone) : schedulePath(),
      "data-testid": "back-to-schedule",
    },
    strings.backToSchedule,
  );
  const cases = consultation ? casesSection(session, consultation) : null;

  return {
    el: shell(
      h("p", { class: "crumbs" }, back),
      h("h1", {}, consultation ? strings.editConsultationTitle : strings.newConsultationTitle),
      h(
        "div",
        { class: "edit-columns" },
        h("div", { class: "edit-main" }, form, consultation ? invitees.el : null),
        h("div", { class: "edit-side" }, cases ? cases.el : h("section", { class: "panel" }, h("h2", {}, strings.casesTitle), h("p", { class: "muted" }, strings.casesAfterSave))),
      ),
    ),
    dispose() {
      invitees.dispose();
      cases?.dispose();
    },
  };
}
