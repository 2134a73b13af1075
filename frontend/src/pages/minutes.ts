/**
 * The minutes of one consultation on a page of their own (after the consultation, from the
 * list's "Biên bản" link): the room's minutes panel (room/minutes.ts) without the room. The
 * chair and the secretary still edit, sign and amend here; the secretary is chosen from the
 * consultation's invitees who are neither the chair nor observers.
 */

import { consultation as getConsultation } from "../api";
import { h } from "../dom";
import type { Page } from "../router";
import type { Session } from "../session";
import { strings } from "../strings";
import { MinutesPanel, type Candidate } from "../room/minutes";
import { topBar } from "./chrome";
import { loadInto } from "./load";

export function minutesPath(id: number): string {
  return `/consultations/${id}/minutes`;
}

export function minutesPage(session: Session, consultationId: number, signOut: () => void): Page {
  const heading = h("h1", {}, strings.minutesTitle);
  const content = h("div", { class: "minutes-page-body" });
  loadInto(content, async () => {
    const c = await getConsultation(session, consultationId);
    heading.textContent = strings.minutesPageTitle(c.title);
    document.title = `${strings.minutesPageTitle(c.title)} · ${strings.appName}`;
    const candidates: Candidate[] = c.invitations
      .filter((i) => i.user !== null && i.role !== "observer" && i.role !== "host")
      .map((i) => ({ user_id: i.user!.id, name: i.user!.name }));
    const panel = new MinutesPanel({ session, consultationId, candidates: () => candidates, expanded: true });
    panel.setViewer({ userId: session.user?.id ?? null, isChair: c.my_room_role === "host" });
    await panel.load();
    panel.setExpanded(true, false);
    return [panel.el];
  });
  return {
    el: h(
      "div",
      { class: "page minutes-page" },
      topBar(session, signOut, h("a", { href: "/", "data-testid": "home-link" }, strings.backHome)),
      h("main", { class: "content" }, heading, content),
    ),
    dispose() {
      document.title = strings.appName;
    },
  };
}
