"""One audit event as a DICOM audit message (PS3.15 A.5, the XML of its audit schema, which
IHE ATNA repositories and SIEMs read): what happened, by whom from where, on what object,
with our own detail carried in a ParticipantObjectDetail."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from app.db.models import AuditEvent


@dataclass(frozen=True)
class Code:
    code: str
    meaning: str
    system: str = "DCM"

    def element(self, tag: str) -> ET.Element:
        return ET.Element(tag, {"csd-code": self.code, "codeSystemName": self.system,
                                "originalText": self.meaning})


INSTANCES_ACCESSED = Code("110103", "DICOM Instances Accessed")
QUERY = Code("110112", "Query")
IMPORT = Code("110107", "Import")
EXPORT = Code("110106", "Export")
USER_AUTHENTICATION = Code("110114", "User Authentication")
SECURITY_ALERT = Code("110113", "Security Alert")
PATIENT_RECORD = Code("110110", "Patient Record")
LOGIN = Code("110122", "Login")
LOGOUT = Code("110123", "Logout")

# (action prefix, event ID, EventActionCode: Create, Read, Update, Delete, Execute); the
# first that matches decides.
EVENTS: tuple[tuple[str, Code, str], ...] = (
    ("dicomweb.search_", QUERY, "E"),
    ("pacs.search", QUERY, "E"),
    ("dicomweb.store", IMPORT, "C"),
    ("pacs.import", IMPORT, "C"),
    ("dicomweb.", INSTANCES_ACCESSED, "R"),
    ("minutes.pdf", EXPORT, "R"),
    ("minutes.fhir", EXPORT, "R"),
    ("audit.export", EXPORT, "R"),
    ("auth.login", USER_AUTHENTICATION, "E"),
    ("auth.logout", USER_AUTHENTICATION, "E"),
    ("auth.", SECURITY_ALERT, "E"),
    ("user.", SECURITY_ALERT, "U"),
    ("hospital.", SECURITY_ALERT, "U"),
    ("pacs_node.", SECURITY_ALERT, "U"),
)
ACTION_VERBS = {"create": "C", "write": "U", "update": "U", "delete": "D", "cancel": "U"}
# 0 success, 4 minor failure (a wrong password: the user may try again), 8 serious failure
# (refused: the action did not happen).
OUTCOMES = {"success": "0", "failure": "4", "denied": "8"}

STUDY_UID = Code("110180", "Study Instance UID")
USER_ID = Code("11", "User Identifier", "RFC-3881")
APPLICATION_SERVER = Code("4", "Application Server Process", "DCM")


def event_codes(action: str) -> tuple[Code, str]:
    """The DICOM event ID and action code of one of our actions."""
    for prefix, code, verb in EVENTS:
        if action.startswith(prefix):
            return code, verb
    # Scheduling, cases, records, minutes, rooms: the patient's consultation record.
    return PATIENT_RECORD, ACTION_VERBS.get(action.rsplit(".", 1)[-1], "E")


def audit_message(event: AuditEvent, source_id: str) -> bytes:
    """The event's AuditMessage, UTF-8 XML."""
    code, verb = event_codes(event.action)
    root = ET.Element("AuditMessage")
    ident = ET.SubElement(root, "EventIdentification", {
        "EventActionCode": verb, "EventDateTime": event.at.isoformat(),
        "EventOutcomeIndicator": OUTCOMES.get(event.outcome, "4")})
    ident.append(code.element("EventID"))
    if code is USER_AUTHENTICATION:
        ident.append((LOGOUT if event.action == "auth.logout" else LOGIN).element("EventTypeCode"))
    ident.append(Code(event.action, event.action, "Hoichan").element("EventTypeCode"))
    reason = (event.detail or {}).get("reason")
    if isinstance(reason, str) and event.outcome != "success":
        ET.SubElement(ident, "EventOutcomeDescription").text = reason
    person = {"UserID": event.actor_email or (str(event.actor_id) if event.actor_id else "-"),
              "UserIsRequestor": "true"}
    if event.client_addr:
        person |= {"NetworkAccessPointID": event.client_addr,
                   "NetworkAccessPointTypeCode": "2"}  # an IP address
    ET.SubElement(root, "ActiveParticipant", person)
    source = ET.SubElement(root, "AuditSourceIdentification", {"AuditSourceID": source_id})
    source.append(APPLICATION_SERVER.element("AuditSourceTypeCode"))
    if event.object_type:
        root.append(_participant_object(event))
    # The declaration by hand: ElementTree's ends in a newline, which syslog escapes.
    body = ET.tostring(root, encoding="unicode")
    return b'<?xml version="1.0" encoding="UTF-8"?>' + body.encode()


def _participant_object(event: AuditEvent) -> ET.Element:
    if event.object_type == "study":
        type_code, role, id_type = "2", "3", STUDY_UID  # a system object, a report
    elif event.object_type == "user":
        type_code, role, id_type = "1", "11", USER_ID  # a person, a security user
    else:
        type_code, role = "2", "4"  # a system object, a domain resource
        id_type = Code(event.object_type, event.object_type, "Hoichan")
    obj = ET.Element("ParticipantObjectIdentification", {
        "ParticipantObjectID": event.object_id or "-", "ParticipantObjectTypeCode": type_code,
        "ParticipantObjectTypeCodeRole": role})
    obj.append(id_type.element("ParticipantObjectIDTypeCode"))
    detail = dict(event.detail or {})
    if event.consultation_id is not None:
        detail["consultation_id"] = event.consultation_id
    if detail:
        # The schema's ParticipantObjectDetail value is base64 (xs:base64Binary).
        value = base64.b64encode(json.dumps(detail, ensure_ascii=False).encode()).decode()
        ET.SubElement(obj, "ParticipantObjectDetail", {"type": "hoichan", "value": value})
    return obj
