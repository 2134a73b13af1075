"""One version of the minutes as a FHIR bundle a hospital's EMR takes: the Patient (with the
national ID when the case has one), the consultation as a virtual Encounter with its
attendees and period, the imaging studies, a DiagnosticReport with the conclusion, and a
DocumentReference to the minutes' PDF, and the patient's Consent to the tele-consultation and
to its recording as last recorded. Built with fhir.resources' R4B models (FHIR 4.3, the R4
line), which validate every resource as it is made."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.consent import Consent as FhirConsent
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.resource import Resource

from app.db.models import (
    Consent,
    ConsentDecision,
    ConsentGiver,
    ConsentMethod,
    ConsentScope,
    Consultation,
    ConsultationStatus,
    Hospital,
    Minutes,
    MinutesStatus,
)
from app.minutes.content import MinutesContent

#: Identifier systems of this deployment's own ids; the national ID's is Vietnam's CCCD.
SYSTEM = "urn:hoichan"
NATIONAL_ID_SYSTEM = "urn:vn:cccd"
LOINC = "http://loinc.org"
CONSULT_NOTE = {"system": LOINC, "code": "11488-4", "display": "Consult note"}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
GENDER = {"M": "male", "F": "female", "O": "other"}
#: Room roles as FHIR's participation types: the chair is the primary performer.
PARTICIPATION_TYPE = {"host": "PPRF", "presenter": "SPRF", "participant": "CON",
                      "observer": "CON"}
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
#: Consent to the consultation is consent to treatment; to its recording, a privacy consent.
FHIR_SCOPE = {ConsentScope.teleconsultation: "treatment",
              ConsentScope.recording: "patient-privacy"}
CONSENT_STATUS = {ConsentDecision.granted: "active", ConsentDecision.refused: "rejected",
                  ConsentDecision.withdrawn: "inactive"}
PATIENT_CONSENT = {"system": LOINC, "code": "59284-0", "display": "Patient Consent"}


def _ref(kind: str, key: str) -> str:
    # Stable within a bundle and across exports of the same version.
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{SYSTEM}:{kind}:{key}')}"


def _when(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _patient_name(pn: str) -> dict[str, Any]:
    family, _, rest = pn.partition("^")
    given = [g for g in rest.split("^")[:2] if g]
    return {"family": family, "given": given, "text": " ".join([family, *given]).strip()}


def _consent(record: Consent, subject: dict[str, str] | None, organization: str,
             ) -> FhirConsent:
    giver = record.giver_name
    if record.given_by is ConsentGiver.representative:
        giver = f"{giver} ({record.relation})"
    how = ("signed form" if record.method is ConsentMethod.signed_form
           else f"verbal, recorded by {record.recorded_by.name}")
    return FhirConsent.model_validate(dict(
        identifier=[{"system": f"{SYSTEM}:consent", "value": str(record.id)}],
        status=CONSENT_STATUS[record.decision],
        scope={"coding": [{"system": CONSENT_SCOPE, "code": FHIR_SCOPE[record.scope]}],
               "text": record.scope.value},
        category=[{"coding": [PATIENT_CONSENT]}], patient=subject,
        dateTime=_when(record.given_at), performer=[{"display": giver}],
        organization=[{"reference": organization}],
        policyRule={"text": "Decree 13/2023/ND-CP; Circular 49/2017/TT-BYT"},
        provision={"type": "permit" if record.decision is ConsentDecision.granted
                   else "deny", "period": {"start": _when(record.given_at)}},
        sourceAttachment={"title": how}))


def minutes_bundle(c: Consultation, m: Minutes, attendees: list[dict[str, Any]],
                   pdf_url: str, consents: list[Consent]) -> Bundle:
    """``attendees`` as the minutes list them (JSON form); ``pdf_url`` where the signed PDF
    of this version is read; ``consents`` the first case's records, oldest first."""
    content = MinutesContent.model_validate(m.content)
    case = c.cases[0] if c.cases else None
    key = f"{c.id}:{m.version}"
    entries: list[tuple[str, Resource]] = []

    def organization(h: Hospital) -> str:
        ref = _ref("hospital", h.code)
        if all(url != ref for url, _ in entries):
            entries.append((ref, Organization.model_validate(dict(
                identifier=[{"system": f"{SYSTEM}:hospital", "value": h.code}],
                name=h.name))))
        return ref

    host_ref = organization(c.host_hospital)
    patient_ref = _ref("patient", f"{c.id}:{case.id}") if case else None
    if case is not None and patient_ref is not None:
        identifiers: list[dict[str, Any]] = [{
            "system": f"{SYSTEM}:patient-id", "value": case.patient_id,
            "type": {"coding": [{"system": IDENTIFIER_TYPE, "code": "MR"}]}}]
        if case.national_id:
            identifiers.append({"system": NATIONAL_ID_SYSTEM, "value": case.national_id,
                                "type": {"coding": [{"system": IDENTIFIER_TYPE,
                                                     "code": "NI"}]}})
        entries.append((patient_ref, Patient.model_validate(dict(
            identifier=identifiers, name=[_patient_name(case.patient_name)],
            gender=GENDER.get(case.patient_sex, "unknown"),
            birthDate=case.patient_birth_date))))
    subject = {"reference": patient_ref} if patient_ref else None

    participants = []
    for a in attendees:
        ref = _ref("user", str(a["user_id"]))
        entries.append((ref, Practitioner.model_validate(dict(
            identifier=[{"system": f"{SYSTEM}:user", "value": str(a["user_id"])}],
            name=[{"text": a["name"]}]))))
        participants.append({
            "type": [{"coding": [{"system": PARTICIPATION,
                                  "code": PARTICIPATION_TYPE.get(a["role"], "CON")}]}],
            "individual": {"reference": ref, "display": a["name"]},
            "period": {"start": _when(a["attended_from"]), "end": _when(a["attended_to"])}})
    starts = [a["attended_from"] for a in attendees if a["attended_from"]]
    ends = [a["attended_to"] for a in attendees if a["attended_to"]]
    encounter_ref = _ref("encounter", str(c.id))
    finished = c.status is ConsultationStatus.ended
    entries.append((encounter_ref, Encounter.model_validate(dict(
        identifier=[{"system": f"{SYSTEM}:consultation", "value": str(c.id)}],
        status="finished" if finished else "in-progress",
        class_fhir={"system": ACT_CODE, "code": "VR", "display": "virtual"},
        subject=subject, participant=participants or None,
        period={"start": _when(min(starts, default=c.scheduled_start)),
                "end": _when(max(ends)) if finished and ends else None},
        reasonCode=[{"text": content.reason}] if content.reason else None,
        serviceProvider={"reference": host_ref}))))

    studies = []
    for study in case.studies if case else []:
        ref = _ref("study", study.study_instance_uid)
        studies.append({"reference": ref})
        entries.append((ref, ImagingStudy.model_validate(dict(
            status="available", subject=subject or {"display": "unknown"},
            identifier=[{"system": "urn:dicom:uid",
                         "value": f"urn:oid:{study.study_instance_uid}"}]))))

    signed = m.status is MinutesStatus.signed
    chair = next((s for s in m.signoffs if s.role == "chair"), None)
    performers = [{"reference": _ref("user", str(s.user_id)), "display": s.user.name}
                  for s in m.signoffs]
    conclusion = "\n".join(
        [content.diagnosis_after, *(f"{a.question}: {a.conclusion}" for a in content.questions),
         content.treatment_plan, content.treatment_method, content.follow_up])
    entries.append((_ref("report", key), DiagnosticReport.model_validate(dict(
        identifier=[{"system": f"{SYSTEM}:minutes", "value": key}],
        status="final" if signed and m.version == 1 else "amended" if signed else "preliminary",
        code={"coding": [CONSULT_NOTE], "text": "Biên bản hội chẩn"},
        subject=subject, encounter={"reference": encounter_ref},
        effectiveDateTime=_when(m.signed_at or m.updated_at),
        issued=_when(m.signed_at) if signed else None,
        performer=performers or None,
        resultsInterpreter=[{"reference": _ref("user", str(chair.user_id)),
                             "display": chair.user.name}] if chair else None,
        imagingStudy=studies or None, conclusion=conclusion.strip() or None))))
    entries.append((_ref("document", key), DocumentReference.model_validate(dict(
        masterIdentifier={"system": f"{SYSTEM}:minutes", "value": key},
        status="current", docStatus="final" if signed else "preliminary",
        type={"coding": [CONSULT_NOTE]}, subject=subject,
        date=_when(m.signed_at or m.updated_at), custodian={"reference": host_ref},
        description=f"Biên bản hội chẩn, phiên bản {m.version}",
        content=[{"attachment": {"contentType": "application/pdf", "url": pdf_url,
                                 "title": f"bien-ban-hoi-chan-{c.id}-v{m.version}.pdf"}}],
        context={"encounter": [{"reference": encounter_ref}]}))))
    for scope in ConsentScope:
        latest = next((r for r in reversed(consents) if r.scope is scope), None)
        if latest is not None:
            entries.append((_ref("consent", str(latest.id)),
                            _consent(latest, subject, host_ref)))
    return Bundle.model_validate(dict(type="collection", timestamp=_when(m.updated_at),
                  identifier={"system": f"{SYSTEM}:minutes-bundle", "value": key},
                  entry=[BundleEntry(fullUrl=url, resource=r) for url, r in entries]))
