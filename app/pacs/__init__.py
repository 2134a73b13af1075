"""Imaging: the durable DICOM store, its index, and the DIMSE services that feed it."""
