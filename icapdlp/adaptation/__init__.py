"""Joins the ICAP server to the payload and DICOM layers (the Adapter the server calls)."""
