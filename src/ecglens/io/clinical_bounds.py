"""Bounds on clinical ECG files, checked before ecgdatakit decodes them: what each file declares is held to the
sample budget (`ecglens.io.limits`) and every compressed stream is inflated as a counted stream, so no file of any
compression ratio makes a reader allocate more than its budget. Also the files' scales, read from the file itself.

- **DICOM, deflated** (transfer syntax Deflated Explicit VR Little Endian, 1.2.840.10008.1.2.1.99): pydicom and
  ecgdatakit would inflate the whole dataset in one call. It is inflated here in 1-MiB steps into a scratch file
  (re-written as Explicit VR Little Endian), refused as `RecordTooLarge` once the inflated size passes
  `MAX_INFLATED_BYTES` (a clinical file's own size limit, 32 MiB), and the scratch copy is what is parsed.
- **DICOM, every file**: each multiplex group's NumberOfWaveformChannels x NumberOfWaveformSamples is held to the
  sample budget before anything is decoded (ecgdatakit itself checks it against the bytes its Waveform Data holds;
  those bytes are bounded by the file's size, or by the inflated bound above).
- **Philips Sierra XLI** (LZW, 10-bit codes, in ``<parsedwaveforms>``): the leads x samples the file declares are
  held to the budget; each chunk's declared size to what is left of the blob; then the LZW stream is walked
  counting only the lengths of its strings (never building them) and refused once its output passes the samples
  declared (a little slack allowed) or `MAX_XLI_VALUES`: ecgdatakit's pure-Python decoder, which has no bound,
  only ever sees a stream known to be small.
- **Scales and origins** (`ecglens.io.limits.check_scale`, `check_origin`): HL7 aECG ``<scale value>`` and
  ``<origin value>``, Philips ``resolution``/``signalresolution``, GE MUSE ``LeadAmplitudeUnitsPerBit``, DICOM
  ChannelSensitivity, ChannelSensitivityCorrectionFactor and ChannelBaseline. ecgdatakit reads a scale that is not a
  number as "none" (1 unit per count) and applies a negative one; here each stated value must be a finite number,
  a scale above 0: a named `RecordError` otherwise.

An XML file that does not parse here (an entity bomb, an external entity, malformed text) is left to ecgdatakit,
whose named error says what is wrong; it is never decoded here.
"""

from __future__ import annotations

import base64
import binascii
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ecglens.io.limits import check_origin, check_scale, check_values, sample_budget
from ecglens.io.record import RecordError, RecordTooLarge

MAX_INFLATED_BYTES = 32 * 2**20
"""A deflated DICOM dataset inflates to at most this (the same 32 MiB as `ecglens.io.clinical.MAX_FILE_BYTES`)."""
INFLATE_STEP = 2**20
"""Bytes inflated per step: the most a deflated file makes the reader hold at once."""
MAX_XLI_VALUES = 1_000_000
"""Samples decoded from one Philips XLI blob at most: 12 leads of 160 s at 500 Hz (a resting ECG holds 10-11 s)."""
XLI_SLACK = 1.25
"""An XLI chunk may decode to this many times the samples its lead needs (a cart pads its last block) and no more."""
DEFLATED = "1.2.840.10008.1.2.1.99"
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
_XLI_HEADER = 8
_LZW_BITS = 10


@contextmanager
def bounded_source(path: Path, format_id: str, where: str) -> Iterator[Path]:
    """Check a clinical file's declared sizes and scales before it is decoded; yield the file to parse (a bounded,
    inflated scratch copy for a deflated DICOM file, removed afterwards; else ``path`` itself).

    Raises:
        RecordTooLarge: more than the sample budget declared, or a compressed stream that inflates past its bound.
        RecordError: a declared size that its data cannot hold, or a scale or origin that is not a finite number
            (a scale not above 0).
    """
    if format_id != "dicom":
        _check_xml(path, format_id, where)
        yield path
        return
    scratch = _inflated_dicom(path, where)
    try:
        source = scratch or path
        _check_dicom(source, where)
        yield source
    finally:
        if scratch is not None:
            shutil.rmtree(scratch.parent, ignore_errors=True)


# -- DICOM ------------------------------------------------------------------------------------------------------------


def _file_meta(handle: Any) -> Any:
    """The file meta group of an open DICOM file, leaving ``handle`` where the dataset starts."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    read_preamble(handle, False)
    return _read_file_meta_info(handle)


def _inflated_dicom(path: Path, where: str) -> Path | None:
    """For a deflated DICOM file, a scratch copy in Explicit VR Little Endian inflated at most
    `MAX_INFLATED_BYTES`; None for any other transfer syntax."""
    from pydicom.filebase import DicomFileLike
    from pydicom.filewriter import write_file_meta_info

    try:
        with path.open("rb") as handle:
            meta = _file_meta(handle)
            if str(meta.get("TransferSyntaxUID", "")) != DEFLATED:
                return None
            folder = Path(tempfile.mkdtemp(prefix="ecglens-dicom-"))
            scratch = folder / "inflated.dcm"
            try:
                with scratch.open("wb") as out:
                    out.write(b"\0" * 128 + b"DICM")
                    meta.TransferSyntaxUID = EXPLICIT_LITTLE
                    write_file_meta_info(DicomFileLike(out), meta, enforce_standard=True)
                    _inflate(handle, out, where)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            return scratch
    except RecordError:
        raise
    except Exception as error:  # a damaged preamble or meta group
        raise RecordError(where, f"DICOM waveform: unreadable file meta ({type(error).__name__})") from None


def _inflate(source: Any, out: Any, where: str) -> None:
    """Raw-inflate ``source`` into ``out`` in `INFLATE_STEP` steps, refused past `MAX_INFLATED_BYTES`."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    pending = b""
    while True:
        if not pending:
            pending = source.read(INFLATE_STEP)
            if not pending:
                break
        try:
            piece = inflater.decompress(pending, INFLATE_STEP)
        except zlib.error as error:
            raise RecordError(where, f"DICOM waveform: damaged deflated data ({error})") from None
        pending = inflater.unconsumed_tail
        total += len(piece)
        if total > MAX_INFLATED_BYTES:
            raise RecordTooLarge(
                where,
                f"DICOM waveform: the deflated dataset inflates to more than {MAX_INFLATED_BYTES // 2**20} MiB, "
                "more than a clinical ECG file may be",
            )
        out.write(piece)
        if inflater.eof:
            break
    out.write(inflater.flush())


def _check_dicom(path: Path, where: str) -> None:
    """Each multiplex group's channels x samples within the sample budget; each channel's sensitivity, correction
    factor and baseline a finite number (the first two above 0)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        groups = list(ds.get("WaveformSequence") or [])
    except Exception:  # unreadable here: ecgdatakit's parse names what is wrong
        return
    for index, group in enumerate(groups):
        channels = _int(group, "NumberOfWaveformChannels")
        samples = _int(group, "NumberOfWaveformSamples")
        if channels is not None and samples is not None and channels > 0 and samples > 0:
            check_values(where, float(channels) * float(samples), f"DICOM multiplex group {index + 1} declares")
        for number, channel in enumerate(group.get("ChannelDefinitionSequence") or []):
            lead = f"(multiplex group {index + 1}, channel {number + 1})"
            for keyword in ("ChannelSensitivity", "ChannelSensitivityCorrectionFactor"):
                text = _raw_text(channel, keyword)
                if text is not None:
                    check_scale(where, f"{keyword} {lead}", text)
            text = _raw_text(channel, "ChannelBaseline")
            if text is not None:
                check_origin(where, f"ChannelBaseline {lead}", text)


def _raw_text(item: Any, keyword: str) -> str | None:
    """An element's value as the file writes it (a DS string), None when absent or empty; never pydicom's
    conversion, which may read ``NaN`` or raise on text."""
    from pydicom.datadict import tag_for_keyword
    from pydicom.dataelem import RawDataElement

    tag = tag_for_keyword(keyword)
    if tag is None or tag not in item:
        return None
    element = item.get_item(tag)
    value = element.value
    if isinstance(element, RawDataElement) or isinstance(value, bytes):
        value = (value or b"").decode("latin-1")
    text = str(value).split("\\")[0].strip() if value is not None else ""
    return text or None


def _int(item: Any, keyword: str) -> int | None:
    """A whole-number element (US, UL, IS) as pydicom reads it; None when absent or not a whole number."""
    try:
        value = item.get(keyword)
        return int(value) if value is not None and str(value).strip() else None
    except (TypeError, ValueError, OverflowError):
        return None


# -- XML (HL7 aECG, Philips, GE MUSE) ---------------------------------------------------------------------------------


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1].lower()


def _check_xml(path: Path, format_id: str, where: str) -> None:
    if format_id not in ("hl7-aecg", "philips-xml", "ge-muse-xml"):
        return
    from defusedxml import ElementTree

    try:
        root = ElementTree.parse(str(path)).getroot()
    except Exception:  # entities, malformed text: ecgdatakit's parse names the fault
        return
    if format_id == "hl7-aecg":
        _check_aecg(root, where)
    elif format_id == "ge-muse-xml":
        _check_muse(root, where)
    else:
        _check_philips(root, where)


def _check_aecg(root: Any, where: str) -> None:
    """Every ``<scale value>`` (above 0) and ``<origin value>`` (finite) of the sequences."""
    for element in root.iter():
        name = _local(element.tag)
        if name not in ("scale", "origin") or element.get("value") is None:
            continue
        text = element.get("value")
        if name == "scale":
            check_scale(where, "<scale value>", text)
        else:
            check_origin(where, "<origin value>", text)


def _check_muse(root: Any, where: str) -> None:
    """Every lead's ``LeadAmplitudeUnitsPerBit`` above 0 (as ecgdatakit reads it: a decimal comma allowed)."""
    for lead in root.iter():
        if _local(lead.tag) != "leaddata":
            continue
        for child in lead:
            if _local(child.tag) == "leadamplitudeunitsperbit" and (child.text or "").strip():
                check_scale(where, "LeadAmplitudeUnitsPerBit", child.text.strip().replace(",", "."))


def _children(element: Any, name: str) -> list[Any]:
    return [child for child in element.iter() if _local(child.tag) == name]


def _check_philips(root: Any, where: str) -> None:
    """The resolution stated (rhythm and representative beats); for XLI data the declared size and a bounded walk."""
    waveforms = _children(root, "parsedwaveforms")
    for element in [*waveforms, *_children(root, "repbeats")]:
        if (element.get("resolution") or "").strip():
            check_scale(where, "resolution", element.get("resolution").strip())
    for characteristics in _children(root, "signalcharacteristics"):  # where ecgdatakit reads it, nowhere else
        for element in characteristics:
            if _local(element.tag) in ("resolution", "signalresolution") and (element.text or "").strip():
                check_scale(where, _local(element.tag), element.text.strip())
    if not waveforms:
        return
    parsed = waveforms[0]
    method = (parsed.get("compression") or parsed.get("compressmethod") or "").strip().upper()
    flag = (parsed.get("compressflag") or "").strip().lower()
    if method != "XLI" or flag in ("false", "no", "f", "0"):
        return
    leads, samples = _philips_declared(root, parsed)
    if leads and samples:
        check_values(where, float(leads) * float(samples), "the Philips file declares")
    try:
        blob = base64.b64decode("".join((parsed.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        return  # ecgdatakit names the bad Base64
    need = int(samples * XLI_SLACK) + 64 if samples else None
    xli_walk(blob, where, per_chunk=need)


def _philips_declared(root: Any, parsed: Any) -> tuple[int | None, int | None]:
    """The lead count and samples per lead a Philips file declares (as ecgdatakit reads them), None where absent."""

    def number(text: str | None) -> float | None:
        try:
            value = float((text or "").strip())
        except ValueError:
            return None
        return value if value == value and abs(value) != float("inf") else None

    def first(name: str) -> str | None:
        found = _children(root, name)
        return found[0].text if found else None

    rate = number(parsed.get("samplespersecond")) or number(first("samplingrate"))
    duration = number(parsed.get("durationperchannel"))
    samples = round(duration * rate / 1000) if rate and duration and rate > 0 and duration > 0 else None
    labels = (parsed.get("leadlabels") or "").split()
    leads = len(labels) or number(parsed.get("numberofleads")) or number(first("numberchannelsallocated"))
    return (int(leads) if leads and leads > 0 else None), samples


def xli_walk(data: bytes, where: str, per_chunk: int | None = None, budget: int = MAX_XLI_VALUES) -> int:
    """Walk a Philips XLI blob: each chunk's declared size checked against what is left, its LZW stream decoded
    counting only string lengths, and refused as soon as a chunk's output passes ``per_chunk`` samples or all
    chunks' output passes ``budget`` samples (the sample budget, when lower). Returns the samples it holds.

    Raises:
        RecordTooLarge: the stream inflates past a bound.
        RecordError: a chunk header or size that the blob cannot hold.
    """
    budget = min(budget, sample_budget())
    total = 0
    offset = 0
    chunk = 0
    while offset < len(data):
        chunk += 1
        if len(data) - offset < _XLI_HEADER:
            return total  # ecgdatakit names the truncated header
        size = int.from_bytes(data[offset : offset + 4], "little", signed=True)
        offset += _XLI_HEADER
        if size <= 0 or size > len(data) - offset:
            raise RecordError(
                where,
                f"Philips XLI chunk {chunk}: declared size {size} is more than the {len(data) - offset} bytes left",
            )
        limit_bytes = 2 * min(budget - total, per_chunk if per_chunk is not None else budget)
        produced = _lzw_length(data, offset, offset + size, limit_bytes)
        if produced > limit_bytes:
            if per_chunk is not None and 2 * per_chunk < 2 * (budget - total):
                reason = f"decodes to more than {per_chunk:,} samples, more than its lead declares"
            else:
                reason = f"brings the blob past {budget:,} samples, more than ecglens decodes for one record"
            raise RecordTooLarge(where, f"Philips XLI chunk {chunk} {reason} (a compression bomb)")
        total += produced // 2
        offset += size
    return total


def _lzw_length(data: bytes, start: int, end: int, limit: int) -> int:
    """The bytes ecgdatakit's 10-bit LZW decoder (`ecgdatakit.parsing.codecs.lzw`) writes for ``data[start:end]``,
    counted from string lengths alone (its table, entry for entry), stopping as soon as the count passes ``limit``."""
    max_code = (1 << _LZW_BITS) - 2
    lengths = [1] * 256 + [0] * (max_code + 1 - 256)  # 0: not defined
    next_code = 256
    previous = 0  # length of the previous string (0: none yet)
    produced = 0
    bit_buffer = 0
    bit_count = 0
    position = start
    mask = (1 << _LZW_BITS) - 1
    while True:
        while bit_count < _LZW_BITS and position < end:
            bit_buffer = (bit_buffer << 8) | data[position]
            position += 1
            bit_count += 8
        if bit_count < _LZW_BITS:
            return produced
        bit_count -= _LZW_BITS
        code = (bit_buffer >> bit_count) & mask
        bit_buffer &= (1 << bit_count) - 1
        if code > max_code:
            return produced
        length = lengths[code]
        if not length:  # KwKwK: the previous string and its first byte
            if not previous:
                return produced  # ecgdatakit names the undefined code
            length = lengths[code] = previous + 1
        if previous and next_code <= max_code:
            lengths[next_code] = previous + 1
            next_code += 1
        previous = length
        produced += length
        if produced > limit:
            return produced
