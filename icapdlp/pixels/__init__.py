"""Burned-in text: OCR, NER, header deny-list, redaction of stored pixel values."""
