/** The scheduling, network and PACS calls of the coordinator's pages (docs/api.md). */

import type { Case, Consultation, Invitation } from "../../api";
import type { Hospital, Session, User } from "../../session";

export interface Page<T> {
  items: T[];
  total: number;
}

export interface InvitationIn {
  user_id?: number;
  hospital_id?: number;
  role: string;
}

export interface ConsultationIn {
  title: string;
  description: string;
  start: string;
  end: string;
  timezone: string;
  host_hospital_id: number;
  host_user_id: number;
  invitations: InvitationIn[];
}

export type ConsultationPatch = Partial<Omit<ConsultationIn, "host_user_id" | "invitations">>;

export interface CaseIn {
  patient_id: string;
  patient_name: string;
  patient_birth_date: string | null;
  patient_sex: string;
  clinical_question: string;
}

export interface PacsNode {
  id: number;
  name: string;
  kind: string;
  ae_title: string;
  host: string;
  port: number | null;
  retrieve: string;
  dicomweb_url: string;
  hospital_id: number | null;
}

export interface RemoteStudy {
  study_instance_uid: string;
  patient_id: string;
  patient_name: string;
  patient_birth_date: string;
  patient_sex: string;
  study_date: string;
  study_time: string;
  accession_number: string;
  study_description: string;
  modalities: string[];
  number_of_series: number | null;
  number_of_instances: number | null;
}

export interface StudyQuery {
  patient_id?: string;
  patient_name?: string;
  study_date_from?: string;
  study_date_to?: string;
  modality?: string;
  accession_number?: string;
}

export interface ImportJob {
  id: number;
  node_id: number | null;
  case_id: number;
  study_instance_uid: string;
  status: "queued" | "running" | "done" | "failed";
  instances_total: number | null;
  instances_done: number;
  instances_failed: number;
  error: string;
  attempts: number;
}

export const ROOM_ROLES = ["host", "presenter", "participant", "observer"] as const;
export const TIERS = ["central", "provincial", "district", "commune"] as const;

function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

export function listConsultations(s: Session, from: string, to: string): Promise<Page<Consultation>> {
  return s.json(`/api/consultations${query({ from, to, limit: 500 })}`);
}

export function getConsultation(s: Session, id: number): Promise<Consultation> {
  return s.json(`/api/consultations/${id}`);
}

export function createConsultation(s: Session, body: ConsultationIn): Promise<Consultation> {
  return s.json("/api/consultations", { method: "POST", json: body });
}

export function patchConsultation(s: Session, id: number, body: ConsultationPatch): Promise<Consultation> {
  return s.json(`/api/consultations/${id}`, { method: "PATCH", json: body });
}

export function cancelConsultation(s: Session, id: number): Promise<Consultation> {
  return s.json(`/api/consultations/${id}/cancel`, { method: "POST" });
}

export function invite(s: Session, id: number, body: InvitationIn): Promise<Invitation> {
  return s.json(`/api/consultations/${id}/invitations`, { method: "POST", json: body });
}

export function changeInvitation(s: Session, id: number, invitationId: number, role: string): Promise<Invitation> {
  return s.json(`/api/consultations/${id}/invitations/${invitationId}`, { method: "PATCH", json: { role } });
}

export function uninvite(s: Session, id: number, invitationId: number): Promise<void> {
  return s.json(`/api/consultations/${id}/invitations/${invitationId}`, { method: "DELETE" });
}

export function addCase(s: Session, id: number, body: CaseIn): Promise<Case> {
  return s.json(`/api/consultations/${id}/cases`, { method: "POST", json: body });
}

export function hospitals(s: Session, tier?: string): Promise<Hospital[]> {
  return s.json(`/api/hospitals${query({ tier })}`);
}

export function users(
  s: Session,
  params: { hospital_id?: number; tier?: string; role?: string; q?: string; limit?: number },
): Promise<Page<User>> {
  return s.json(`/api/users${query(params)}`);
}

export function pacsNodes(s: Session): Promise<PacsNode[]> {
  return s.json("/api/pacs-nodes");
}

export function searchStudies(s: Session, nodeId: number, criteria: StudyQuery): Promise<RemoteStudy[]> {
  return s.json(`/api/pacs-nodes/${nodeId}/studies${query({ ...criteria })}`);
}

export function startImport(s: Session, id: number, caseId: number, nodeId: number, studyUid: string): Promise<ImportJob> {
  return s.json(`/api/consultations/${id}/cases/${caseId}/imports`, {
    method: "POST",
    json: { node_id: nodeId, study_instance_uid: studyUid },
  });
}

export function consultationImports(s: Session, id: number): Promise<ImportJob[]> {
  return s.json(`/api/consultations/${id}/imports`);
}

export function getImport(s: Session, importId: number): Promise<ImportJob> {
  return s.json(`/api/imports/${importId}`);
}

export function retryImport(s: Session, importId: number): Promise<ImportJob> {
  return s.json(`/api/imports/${importId}/retry`, { method: "POST" });
}
