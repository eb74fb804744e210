"""HTTP payloads <-> DICOM objects: raw, multipart, DICOMweb, JSON, zip, gzip."""
