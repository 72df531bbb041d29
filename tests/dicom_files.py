"""DICOM files for the tests, built with pydicom (nothing downloaded): Ophthalmic Tomography
Image Storage objects with a known patient name and ID, single- or multi-frame, either
photometric interpretation, uncompressed or RLE Lossless."""

from __future__ import annotations

from pathlib import Path

import numpy as np

OPT_STORAGE = "1.2.840.10008.5.1.4.1.1.77.1.5.4"  # Ophthalmic Tomography Image Storage
PATIENT_NAME = "Quintessa^Vanderzee"
PATIENT_ID = "ID-7Q3X9K"
BIRTH_DATE = "19470312"


def write_dicom(path: Path, pixels: np.ndarray, *, photometric: str = "MONOCHROME2", bits: int = 8,
                frames: bool = False, rle: bool = False, patient_id: str = PATIENT_ID,
                patient_name: str = PATIENT_NAME, pixel_data: bool = True) -> Path:
    """``pixels``: (rows, cols) gray, (rows, cols, 3) RGB, or (frames, rows, cols) with ``frames``."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

    array = np.asarray(pixels)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = OPT_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = OPT_STORAGE, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = patient_name, patient_id, BIRTH_DATE
    ds.Manufacturer, ds.ManufacturerModelName, ds.Modality = "Heidelberg Engineering", "Spectralis", "OPT"
    rgb = photometric == "RGB"
    ds.Rows, ds.Columns = array.shape[-2:] if not rgb else array.shape[:2]
    if frames:
        ds.NumberOfFrames = array.shape[0]
    ds.SamplesPerPixel = 3 if rgb else 1
    if rgb:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = (8 if bits <= 8 else 16), bits, bits - 1, 0
    stored = array.astype(np.uint8 if bits <= 8 else np.uint16)
    if pixel_data:
        ds.PixelData = stored.tobytes()
        if rle:
            ds.compress(RLELossless, stored)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def gradient(rows: int = 32, cols: int = 40) -> np.ndarray:
    """A (rows, cols) uint8 image whose every value differs along a row: 0, 1, 2, ..."""
    return (np.arange(rows * cols).reshape(rows, cols) % 251).astype(np.uint8)
