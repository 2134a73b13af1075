"""The composition root: the one place that puts the platform's parts together. ``app`` (the
REST API, DICOMweb, PACS), ``signaling`` (the room protocol and the SFU cluster) and ``media``
(the SFU) know nothing of each other's wiring; the server and the command line are built
here."""
