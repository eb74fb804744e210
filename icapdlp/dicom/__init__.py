"""The pure DICOM pipeline: pre-parse limits, PS3.15 Annex E de-identification, clean rebuild."""
