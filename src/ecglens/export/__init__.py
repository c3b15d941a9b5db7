"""Results a hospital files: FHIR R4 Bundles (`ecglens.export.fhir`), DICOM Encapsulated PDF objects for a PACS
(`ecglens.export.dicom`), and the batch writer that makes them per record as a batch streams
(`ecglens.export.writer`). FHIR needs ``pip install 'ecglens[hospital]'``; DICOM the ``clinical`` extra's pydicom.
Both load only when asked for."""
