"""DICOMweb (DICOM PS3.18) over the local store: QIDO-RS search, WADO-RS retrieve."""
