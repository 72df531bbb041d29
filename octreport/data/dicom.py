"""DICOM scans (``.dcm``): bytes in, a B-scan as an 8-bit array and the few header facts an audit
may use out. Pure: no TensorFlow, no file listing; pydicom reads the file.

* **Frames.** A single-frame file is one B-scan; a multi-frame OCT volume (Ophthalmic Tomography
  Image Storage: one B-scan per frame) gives its central frame, the one a Kermany-style B-scan
  export shows.
* **Pixels.** The modality LUT (rescale slope and intercept) is applied, then the VOI window when
  the file has one, else the stored bit depth's full range, is scaled to 0-255; MONOCHROME1
  (white is low) is inverted; RGB-encoded gray becomes one channel by luminance (and gray is
  repeated for a 3-channel model).
* **Transfer syntaxes.** What the installed pydicom decoders read: uncompressed (implicit and
  explicit VR little endian, explicit big endian, deflated) and RLE Lossless with pydicom alone;
  JPEG Baseline and JPEG 2000 through Pillow when its build has them. Any other (JPEG-LS, JPEG
  Lossless, HTJ2K without pylibjpeg) is a skipped file whose reason names the syntax.
* **Privacy.** Only PatientID is read from the patient module, and only to be returned as a
  salted SHA-256 (:func:`patient_key`); names, birth dates and every other identifying tag are
  never read into anything this module returns. Manufacturer and ManufacturerModelName are kept
  (the device, for the acquisition checks).
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

DICOM_SUFFIX = ".dcm"
_PREAMBLE = 128
_MAGIC = b"DICM"


def is_dicom_bytes(raw: bytes) -> bool:
    """A DICOM Part 10 file: ``DICM`` after the 128-byte preamble."""
    return raw[_PREAMBLE:_PREAMBLE + 4] == _MAGIC


@dataclass(frozen=True)
class DicomFacts:
    """What an audit may know of one DICOM file. ``patient``: the salted hash of PatientID (None
    without one); ``device``: Manufacturer and ManufacturerModelName ("" when neither is given)."""

    frames: int
    rows: int
    columns: int
    photometric: str
    bits_stored: int
    transfer_syntax: str
    device: str
    patient: str | None


class DicomProblem(ValueError):
    """Why a DICOM file cannot give a B-scan; the message is what the report names."""


def patient_key(patient_id: str, salt: str) -> str:
    """``pt-`` and 16 hex digits of SHA-256(salt, PatientID): the same patient, and salt, give the
    same key in every run; the ID itself is never kept."""
    return "pt-" + hashlib.sha256(f"{salt}\x00{patient_id.strip()}".encode()).hexdigest()[:16]


def _quiet_pydicom() -> None:
    """pydicom's warnings and log lines about a tag may quote its value (a name, a birth date):
    values are not validated on reading, its warnings are ignored, and its logger says nothing
    below an error, not even to run.log. Idempotent."""
    import pydicom

    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\..*)?$")
    logger = logging.getLogger("pydicom")
    logger.setLevel(logging.CRITICAL)
    logger.propagate = False


def _dataset(source: bytes | Path | BinaryIO, header_only: bool = False):
    """The dataset of a file's bytes, of a path (opened once) or of an open binary file (read from
    its start; read up to the pixel data when ``header_only``, and left there)."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            return _dataset(handle, header_only)
    import pydicom
    from pydicom.errors import InvalidDicomError

    _quiet_pydicom()
    if isinstance(source, bytes):
        start, stream = source, io.BytesIO(source)
    else:
        start, stream = source.read(_PREAMBLE + 4), source
        stream.seek(0)
    if not is_dicom_bytes(start):
        raise DicomProblem("not a DICOM file (no DICM marker after the 128-byte preamble)")
    try:
        ds = pydicom.dcmread(stream, stop_before_pixels=header_only)
    except (InvalidDicomError, EOFError, ValueError, OSError, KeyError, TypeError) as error:
        # Only the exception's type: a parser's message may quote a tag's value.
        raise DicomProblem(f"damaged DICOM file ({type(error).__name__} while reading its header)") from error
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        raise DicomProblem("damaged DICOM file (no readable file meta information: transfer syntax unknown)")
    return ds


def dicom_facts(source: bytes | Path, salt: str) -> DicomFacts:
    """The header facts of one file's bytes or path (no pixel decode; a path is read up to its pixel data)."""
    ds = _dataset(source, header_only=True)
    device = " ".join(str(ds.get(tag, "")).strip() for tag in ("Manufacturer", "ManufacturerModelName")).strip()
    patient = str(ds.get("PatientID", "")).strip()
    return DicomFacts(
        frames=int(ds.get("NumberOfFrames", 1) or 1), rows=int(ds.get("Rows", 0) or 0),
        columns=int(ds.get("Columns", 0) or 0), photometric=str(ds.get("PhotometricInterpretation", "")),
        bits_stored=int(ds.get("BitsStored", 0) or 0), transfer_syntax=_syntax_name(ds), device=device,
        patient=patient_key(patient, salt) if patient else None,
    )


def dicom_frame_count(path: Path) -> int:
    """Frames of a DICOM file from its header (NumberOfFrames; 1 when absent); no pixel read."""
    return int(_dataset(Path(path), header_only=True).get("NumberOfFrames", 1) or 0)


def frame_pixels(raw: bytes, channels: int = 1, frame: int | None = None) -> np.ndarray:
    """One B-scan of a DICOM file as uint8 ``(rows, columns, channels)``: frame ``frame`` (0-based)
    of a multi-frame volume, or its central frame when ``frame`` is None or negative.

    Raises :class:`DicomProblem` naming what is wrong: no pixel data, zero frames, a frame the file
    does not have, a transfer syntax no installed decoder reads, a constant image."""
    ds = _dataset(raw)
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise DicomProblem("DICOM file without pixel data")
    frames = int(ds.get("NumberOfFrames", 1) or 0)
    if frames < 1:
        raise DicomProblem("multi-frame DICOM file with zero frames")
    index = frames // 2 if frame is None or frame < 0 else int(frame)
    if index >= frames:
        raise DicomProblem(f"no frame {index} (the file has {frames})")
    try:
        from pydicom.pixels import pixel_array
        pixels = pixel_array(ds, index=index if frames > 1 else None)
    except (NotImplementedError, RuntimeError) as error:
        if isinstance(error, NotImplementedError) or "missing dependencies" in str(error) or "no decoder" in str(error).lower():
            raise DicomProblem(f"{_syntax_name(ds)}: no installed decoder reads it") from error
        raise DicomProblem(f"{_syntax_name(ds)}: the pixel data cannot be decoded ({_first_line(error)})") from error
    except (ValueError, AttributeError, OSError, KeyError) as error:
        raise DicomProblem(f"{_syntax_name(ds)}: the pixel data cannot be decoded ({_first_line(error)})") from error
    return _to_uint8(ds, np.asarray(pixels), channels)


_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # PixelData, FloatPixelData, DoubleFloatPixelData


def dicom_problem(path: Path) -> str | None:
    """Why ``path`` cannot give a B-scan, or None (the damaged-file check of a ``.dcm`` file, before
    the run). One open and a header-only parse: the header up to the pixel data (never the pixel
    data of a volume), the pixel data element's tag after it, and whether an installed decoder
    reads the transfer syntax. Nothing is decoded: what only the decode can tell (a constant image,
    damaged compressed frames) drops the file in the run's one read, and the run names the reason
    (:func:`octreport.evaluation.predict.evaluate_files`)."""
    try:
        with Path(path).open("rb") as handle:
            ds = _dataset(handle, header_only=True)
            has_pixels = _pixel_data_follows(ds, handle)
    except DicomProblem as problem:
        return str(problem)
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if not has_pixels:
        return "DICOM file without pixel data"
    if int(ds.get("NumberOfFrames", 1) or 0) < 1:
        return "multi-frame DICOM file with zero frames"
    return _decoder_problem(ds)


def _pixel_data_follows(ds, handle: BinaryIO) -> bool:
    """Whether a pixel data element follows the header that ``dcmread(..., stop_before_pixels=True)``
    left ``handle`` after (its tag, 4 bytes). A deflated data set is one zlib stream, where the
    position says nothing: its data set is read whole (still not decoded)."""
    import pydicom

    syntax = ds.file_meta.TransferSyntaxUID
    if syntax == pydicom.uid.DeflatedExplicitVRLittleEndian:
        handle.seek(0)
        full = pydicom.dcmread(handle)
        return any(tag in full for tag in _PIXEL_TAGS)
    raw = handle.read(4)
    if len(raw) < 4:
        return False
    order = "big" if syntax == pydicom.uid.ExplicitVRBigEndian else "little"
    tag = (int.from_bytes(raw[:2], order) << 16) | int.from_bytes(raw[2:], order)
    return tag in _PIXEL_TAGS


def _decoder_problem(ds) -> str | None:
    """Why no installed decoder reads the file's transfer syntax, or None."""
    from pydicom.pixels import get_decoder

    syntax = ds.file_meta.TransferSyntaxUID
    if not syntax.is_compressed:
        return None
    try:
        available = get_decoder(syntax).is_available
    except (NotImplementedError, ValueError):
        available = False
    return None if available else f"{_syntax_name(ds)}: no installed decoder reads it"


def _to_uint8(ds, pixels: np.ndarray, channels: int) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422") and pixels.ndim == 3:
        if photometric != "RGB":
            from pydicom.pixels import convert_color_space
            pixels = convert_color_space(pixels, photometric, "RGB")
        gray = pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        low, high = 0.0, float(2 ** int(ds.get("BitsStored", 8)) - 1)
    else:
        values = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float64)
        if "WindowCenter" in ds and "WindowWidth" in ds:
            values = np.asarray(apply_voi_lut(values, ds), dtype=np.float64)
            low, high = float(values.min()), float(values.max())
        else:
            low, high = _stored_range(ds)
        gray = values
    if float(gray.min()) == float(gray.max()):
        raise DicomProblem(f"constant image (every pixel {gray.flat[0]:g}): no B-scan to read")
    scaled = np.clip((gray - low) / max(high - low, 1e-12), 0.0, 1.0)
    if photometric == "MONOCHROME1":
        scaled = 1.0 - scaled
    image = np.round(scaled * 255.0).astype(np.uint8)[..., None]
    return np.repeat(image, channels, axis=2) if channels == 3 else image


def _stored_range(ds) -> tuple[float, float]:
    """The values the stored bits can hold, after the rescale (modality LUT)."""
    bits = int(ds.get("BitsStored", 8) or 8)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    ends = sorted((low * slope + intercept, high * slope + intercept))
    return ends[0], ends[1]


def _syntax_name(ds) -> str:
    uid = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return "unknown transfer syntax" if uid is None else f"{uid.name} ({uid})"


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
