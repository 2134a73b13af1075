"""The audit trail sent on to a hospital's collector: DICOM audit messages over syslog/TLS."""
