/** The coordinator's pages: the schedule (day/week list) and the consultation editor. */

import type { Route } from "../../router";
import type { Session, User } from "../../session";
import { editPage } from "./edit";
import { SCHEDULE_PATH, schedulePage } from "./list";

export { SCHEDULE_PATH };

/** Coordinators (who are not also doctors) start on the schedule rather than the join list. */
export function startsOnSchedule(user: User | null): boolean {
  return !!user && user.roles.includes("coordinator") && !user.roles.includes("doctor");
}

export function isStaff(user: User | null): boolean {
  return !!user && (user.roles.includes("coordinator") || user.roles.includes("admin"));
}

export function coordinatorRoutes(
  session: Session,
  signOut: () => void,
  navigate: (path: string, options?: { replace?: boolean }) => void,
): Route[] {
  return [
    { pattern: /^\/coordinator$/, render: (_p, url) => schedulePage(session, url, signOut, navigate) },
    { pattern: /^\/coordinator\/new$/, render: (_p, url) => editPage(session, null, url, signOut, navigate) },
    {
      pattern: /^\/coordinator\/consultations\/(\d+)$/,
      render: ([id], url) => editPage(session, Number(id), url, signOut, navigate),
    },
  ];
}
