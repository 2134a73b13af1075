/** The REST calls the app makes (docs/api.md; the reference is /api/openapi.json). */

import type { Hospital, Session } from "./session";

export interface Invitation {
  id: number;
  role: string;
  user: { id: number; name: string; email: string; hospital_id: number } | null;
  hospital: Hospital | null;
}

export interface Case {
  id: number;
  patient_id: string;
  patient_name: string;
  patient_birth_date: string | null;
  patient_sex: string | null;
  clinical_question: string;
  study_instance_uids: string[];
}

export interface Consultation {
  id: number;
  title: string;
  description: string;
  start: string;
  end: string;
  timezone: string;
  status: string;
  host_hospital: Hospital;
  invitations: Invitation[];
  cases: Case[];
  record: unknown;
  my_room_role?: string | null;
}

export interface JoinToken {
  token: string;
  expires_at: string;
  consultation_id: number;
  room_role: string;
  /** TURN servers with credentials for this token's peer connections; empty without TURN. */
  ice_servers: RTCIceServer[];
}

export function myConsultations(session: Session): Promise<Consultation[]> {
  return session.json<Consultation[]>("/api/me/consultations");
}

export function consultation(session: Session, id: number): Promise<Consultation> {
  return session.json<Consultation>(`/api/consultations/${id}`);
}

export function joinToken(session: Session, id: number): Promise<JoinToken> {
  return session.json<JoinToken>(`/api/consultations/${id}/join-token`, { method: "POST" });
}
