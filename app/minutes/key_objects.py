"""The signed minutes' key images as DICOM objects for the study: a Key Object Selection
document ("Of Interest", CID 7010) naming the marked images, and a Comprehensive 3D SR
(TID 1500 measurement report) holding the doctors' measurements on them, one of each per
study, each in a series of its own.

UIDs are derived from the minutes' version and the study, so building them again (a send
retried after the PACS was down) gives the same objects: the store keeps the first, and the
PACS replaces its copy with an identical one.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels.utils import pixel_array
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from app.dicomweb import render
from app.minutes.content import KeyImageMark

MANUFACTURER = "Hoichan"
#: Series numbers far from a modality's own, so the viewer lists these last.
KOS_SERIES_NUMBER = 9901
SR_SERIES_NUMBER = 9902
#: The rendered key image's longest side in the PDF (the page shows it at most 16 cm wide).
PDF_SIDE = 1024


@dataclass(frozen=True)
class KeyObjects:
    """What one study's marks become: the KOS, and the SR when a mark has measurements."""

    study_instance_uid: str
    kos_sop_instance_uid: str
    kos: bytes
    sr_sop_instance_uid: str | None
    sr: bytes | None


def _uid(kind: str, minutes_id: int, version: int, study_uid: str) -> str:
    return generate_uid(entropy_srcs=[f"hoichan:{kind}:{minutes_id}:{version}:{study_uid}"])


def _observer(name: str) -> hd.sr.ObserverContext:
    return hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            # A trailing caret: the whole name as one component, as the user wrote it.
            name=f"{name}^"))


def _group(n: int, mark: KeyImageMark, image: Dataset
           ) -> list[hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations]:
    """One TID 1410 group per length: the line as a two-point polyline on the image, and
    its length in millimetres."""
    groups = []
    source = hd.sr.SourceImageForRegion.from_source_image(
        image, referenced_frame_numbers=[mark.frame] if "NumberOfFrames" in image else None)
    for m, measurement in enumerate(mark.measurements, 1):
        region = hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=np.array([list(p) for p in measurement.points], dtype=float),
            source_image=source)
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(
                uid=generate_uid(entropy_srcs=[image.SOPInstanceUID, str(mark.frame),
                                               str(m)]),
                identifier=measurement.label or f"key image {n} length {m}"),
            referenced_region=region,
            measurements=[hd.sr.Measurement(name=codes.SCT.Length,
                                            value=measurement.length_mm,
                                            unit=codes.UCUM.Millimeter)]))
    return groups


def _written(ds: Dataset) -> bytes:
    # Names and captions are Vietnamese: UTF-8, whatever the source images declared.
    ds.SpecificCharacterSet = "ISO_IR 192"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def build(marks: Sequence[KeyImageMark], images: Mapping[str, Dataset], *, minutes_id: int,
          version: int, observer: str, description: str) -> list[KeyObjects]:
    """The KOS and SR of each study the marks point into. ``images`` are the marked
    instances (headers suffice) by SOP Instance UID."""
    studies: dict[str, list[tuple[int, KeyImageMark]]] = {}
    for n, mark in enumerate(marks, 1):
        studies.setdefault(mark.study_instance_uid, []).append((n, mark))
    built = []
    for study_uid, numbered in studies.items():
        evidence = list({m.sop_instance_uid: images[m.sop_instance_uid]
                         for _, m in numbered}.values())
        kos_uid = _uid("kos", minutes_id, version, study_uid)
        kos = hd.ko.KeyObjectSelectionDocument(
            evidence=evidence,
            content=hd.ko.KeyObjectSelection(
                document_title=codes.DCM.OfInterest, referenced_objects=evidence,
                observer_person_context=_observer(observer), description=description),
            series_instance_uid=_uid("kos-series", minutes_id, version, study_uid),
            series_number=KOS_SERIES_NUMBER,
            sop_instance_uid=kos_uid,
            instance_number=version, manufacturer=MANUFACTURER)
        groups = [g for n, m in numbered for g in _group(n, m, images[m.sop_instance_uid])]
        sr, sr_uid = None, None
        if groups:
            sr_uid = _uid("sr", minutes_id, version, study_uid)
            report = hd.sr.MeasurementReport(
                observation_context=hd.sr.ObservationContext(
                    observer_person_context=_observer(observer)),
                procedure_reported=codes.LN.CTUnspecifiedBodyRegion
                if evidence[0].get("Modality") == "CT" else codes.SCT.ImagingProcedure,
                imaging_measurements=groups)
            sr = _written(hd.sr.Comprehensive3DSR(
                evidence=evidence, content=report,
                series_instance_uid=_uid("sr-series", minutes_id, version, study_uid),
                series_number=SR_SERIES_NUMBER,
                sop_instance_uid=sr_uid,
                instance_number=version, manufacturer=MANUFACTURER, is_complete=True,
                is_final=True, series_description=description[:64]))
        built.append(KeyObjects(study_uid, kos_uid, _written(kos), sr_uid, sr))
    return built


def frame_png(path: Path, frame: int) -> bytes:
    """The marked frame as the PDF shows it: the file's own window, as the server renders
    thumbnails."""
    ds = pydicom.dcmread(path)
    pixels = pixel_array(ds, index=frame - 1)
    return render.render(ds, pixels, None, (PDF_SIDE, PDF_SIDE), "image/png")
