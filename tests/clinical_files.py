"""Clinical ECG files the tests write themselves: a GE MUSE XML and a DICOM 12-lead waveform, well formed or
hostile (entity bombs, external entities, lying sample counts, bad base64, wrong lead codes, another SOP class, no
waveform, a gigabyte declared). Generated, never stored; the shared real files are in ``../shared/data/clinical``."""

from __future__ import annotations

import base64
import subprocess
import sys
import zlib
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

MUSE_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
BOMB = (
    '<!DOCTYPE RestingECG [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {b} "{("&" + a + ";") * 10}">' for a, b in zip("abcdefgh", "bcdefghi", strict=True))
    + "]>"
)
"""The billion laughs: nine levels of ten, 10^9 characters from a few hundred bytes."""
XXE = '<!DOCTYPE RestingECG [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


def muse_xml(
    n: int = 5000,
    count: int | None = None,
    leads: tuple[str, ...] = MUSE_LEADS,
    data: str | None = None,
    doctype: str = "",
    name: str = "NOBODY",
    patient: dict[str, str] | None = None,
    test: dict[str, str] | None = None,
    statements: tuple[str, ...] = (),
) -> str:
    """A GE MUSE XML rhythm waveform: 8 leads of int16 at 4.88 uV per unit, 500 Hz; ``count`` lies about the
    sample count, ``data`` replaces every lead's base64, ``doctype`` goes before the root, and ``name`` is the
    patient's last name (an entity reference with a ``doctype``). ``patient`` and ``test`` add elements to
    ``PatientDemographics`` and ``TestDemographics`` (``PatientID``, ``DateofBirth`` as MM-DD-YYYY,
    ``OrderingMDLastName``, ``AcquisitionTechID``, ...), ``statements`` the ``Diagnosis`` (each a line,
    XML-escaped here; written as UTF-8 when one is not Latin-1)."""
    rng = np.random.default_rng(0)
    encoding = "ISO-8859-1" if all(s.isascii() for s in statements) else "UTF-8"
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in (patient or {}).items())
    staff = "".join(f"<{k}>{v}</{k}>" for k, v in (test or {}).items())
    diagnosis = "".join(
        f"<DiagnosisStatement><StmtFlag>ENDSLINE</StmtFlag><StmtText>{escape(s)}</StmtText></DiagnosisStatement>"
        for s in statements
    )
    parts = [
        f'<?xml version="1.0" encoding="{encoding}"?>{doctype}<RestingECG><PatientDemographics>'
        f"<PatientLastName>{name}</PatientLastName>{fields}</PatientDemographics>"
        f"<TestDemographics>{staff}</TestDemographics>"
        + (f"<Diagnosis>{diagnosis}</Diagnosis>" if statements else "")
        + "<Waveform><WaveformType>Rhythm"
        f"</WaveformType><SampleBase>500</SampleBase><SampleExponent>0</SampleExponent>"
        f"<NumberofLeads>{len(leads)}</NumberofLeads>"
    ]
    for lead in leads:
        samples = base64.b64encode(rng.normal(0, 100, n).astype("<i2").tobytes()).decode()
        parts.append(
            f"<LeadData><LeadByteCountTotal>{2 * n}</LeadByteCountTotal><LeadSampleCountTotal>{count or n}"
            "</LeadSampleCountTotal><LeadAmplitudeUnitsPerBit>4.88</LeadAmplitudeUnitsPerBit><LeadAmplitudeUnits>"
            f"MICROVOLTS</LeadAmplitudeUnits><LeadID>{lead}</LeadID><WaveFormData>{data or samples}</WaveFormData>"
            "</LeadData>"
        )
    return "".join([*parts, "</Waveform></RestingECG>"])


ECG_SOP = "1.2.840.10008.5.1.4.1.1.9.1.1"
CT_SOP = "1.2.840.10008.5.1.4.1.1.2"
MDC_CODES = {
    "I": "5.6.3-9-1",
    "II": "5.6.3-9-2",
    "III": "5.6.3-9-61",
    "aVR": "5.6.3-9-62",
    "aVL": "5.6.3-9-63",
    "aVF": "5.6.3-9-64",
    "V1": "5.6.3-9-3",
    "V2": "5.6.3-9-4",
    "V3": "5.6.3-9-5",
    "V4": "5.6.3-9-6",
    "V5": "5.6.3-9-7",
    "V6": "5.6.3-9-8",
}


def dicom_ecg(
    path: Path,
    n: int = 5000,
    declared: int | None = None,
    sop: str = ECG_SOP,
    waveform: bool = True,
    fields: dict[str, str] | None = None,
    statements: tuple[str, ...] = (),
    scales: dict[str, str] | None = None,
) -> Path:
    """A DICOM 12-lead ECG (int16 at 2.5 uV per unit, 500 Hz) written with pydicom; ``declared`` lies about the
    sample count, ``sop`` sets another storage class, ``waveform=False`` leaves the waveform out. ``fields``
    sets attributes by keyword (``PatientID``, ``PatientBirthDate``, ``ReferringPhysicianName``, ...),
    ``statements`` become free-text annotations (``UnformattedTextValue``), as a cart writes its
    interpretation, and ``scales`` writes each channel's ChannelSensitivity, ChannelSensitivityCorrectionFactor
    or ChannelBaseline as the text given (``NaN``, ``abc``, ``-1.25``: written as they are, unvalidated)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop, meta.MediaStorageSOPInstanceUID, "ECG"
    ds.PatientName = "NOBODY^TEST"
    if waveform:
        group = Dataset()
        group.MultiplexGroupTimeOffset, group.WaveformOriginality = 0.0, "ORIGINAL"
        group.NumberOfWaveformChannels, group.NumberOfWaveformSamples = 12, declared or n
        group.SamplingFrequency, group.MultiplexGroupLabel = 500.0, "RHYTHM"
        group.ChannelDefinitionSequence = [_channel(lead, code, scales) for lead, code in MDC_CODES.items()]
        group.WaveformBitsAllocated, group.WaveformSampleInterpretation = 16, "SS"
        group.WaveformData = np.random.default_rng(0).normal(0, 100, (n, 12)).astype("<i2").tobytes()
        ds.WaveformSequence = [group]
    for keyword, value in (fields or {}).items():
        setattr(ds, keyword, value)
    if statements:
        items = []
        for text in statements:
            item = Dataset()
            item.UnformattedTextValue = text
            items.append(item)
        ds.WaveformAnnotationSequence = items
    from pydicom import config

    mode = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.IGNORE
    try:
        ds.save_as(path, enforce_file_format=True)
    finally:
        config.settings.writing_validation_mode = mode
    return path


def _channel(lead: str, code: str, scales: dict[str, str] | None = None):
    from pydicom.dataset import Dataset

    source, unit, channel = Dataset(), Dataset(), Dataset()
    source.CodeValue, source.CodingSchemeDesignator, source.CodeMeaning = code, "MDC", f"Lead {lead}"
    unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = "uV", "UCUM", "microvolt"
    channel.ChannelSourceSequence, channel.ChannelSensitivityUnitsSequence = [source], [unit]
    channel.ChannelSensitivity, channel.ChannelSensitivityCorrectionFactor = 2.5, 1
    channel.ChannelBaseline, channel.WaveformBitsStored = 0, 16
    for keyword, text in (scales or {}).items():
        from pydicom.datadict import tag_for_keyword
        from pydicom.dataelem import RawDataElement

        tag = tag_for_keyword(keyword)
        encoded = text.encode() + b" " * (len(text.encode()) % 2)
        channel[tag] = RawDataElement(tag, "DS", len(encoded), encoded, 0, False, True)
    return channel


def philips_xml(
    n: int = 5000,
    patient: str = "",
    acquirer: str = "",
    statements: tuple[str, ...] = (),
    status: str = "Unconfirmed",
) -> str:
    """A Philips PageWriter XML 1.04: 12 leads of int16 at 5 uV per unit, 500 Hz, uncompressed Base64, the
    acquisition on 2011-12-01. ``patient`` and ``acquirer`` are XML put into ``generalpatientdata`` (ids,
    ``<name>``, ``<age><dateofbirth>``) and ``acquirer`` (``<operator id="..">``, clinicians); ``statements``
    become the interpretation's left statements."""
    samples = np.random.default_rng(0).normal(0, 100, (12, n)).astype("<i2")
    data = base64.b64encode(samples.tobytes()).decode()
    lines = "".join(
        f"<statement><statementcode>X</statementcode><leftstatement>{text}</leftstatement><rightstatement />"
        "</statement>"
        for text in statements
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<restingecgdata xmlns="http://www3.medical.philips.com" status="{status}" lang="en">'
        "<documentinfo><documenttype>PhilipsECG</documenttype><documentversion>1.04</documentversion>"
        "</documentinfo>"
        '<dataacquisition date="2011-12-01" time="07:27:34"><machine machineid="1">PageWriter</machine>'
        f"<acquirer>{acquirer}</acquirer><signalcharacteristics><samplingrate>500</samplingrate>"
        "<resolution>5</resolution><signalsigned>True</signalsigned>"
        "<numberchannelsallocated>12</numberchannelsallocated><acquisitiontype>STD-12</acquisitiontype>"
        "</signalcharacteristics></dataacquisition>"
        f"<patient><generalpatientdata>{patient}<sex>Male</sex></generalpatientdata></patient>"
        f'<interpretations><interpretation date="2011-12-01" time="07:27:34">{lines}</interpretation>'
        "</interpretations>"
        f'<waveforms><parsedwaveforms durationperchannel="{n * 2}" samplespersecond="500" dataencoding="Base64" '
        f'compression="Uncompressed" resolution="5">{data}</parsedwaveforms></waveforms></restingecgdata>'
    )


def aecg_xml(n: int = 5000, scale: str = "2.5", origin: str = "0") -> str:
    """An HL7 aECG rhythm series: 12 leads of integer digits at 500 Hz, each ``<scale value>`` and ``<origin value>``
    (uV) written as given."""
    rng = np.random.default_rng(0)
    leads = []
    for lead in MDC_CODES:
        digits = " ".join(str(int(v)) for v in rng.normal(0, 100, n))
        leads.append(
            f'<component><sequence><code code="MDC_ECG_LEAD_{lead.upper()}" codeSystem="2.16.840.1.113883.6.24"/>'
            f'<value xsi:type="SLIST_PQ"><origin value="{origin}" unit="uV"/><scale value="{scale}" unit="uV"/>'
            f"<digits>{digits}</digits></value></sequence></component>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><AnnotatedECG xmlns="urn:hl7-org:v3" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><id root="1.2.3"/><code code="93000"/>'
        '<effectiveTime><low value="20020101000000"/><high value="20020101000010"/></effectiveTime>'
        '<component><series><code code="RHYTHM" codeSystem="2.16.840.1.113883.5.4"/>'
        '<effectiveTime><low value="20020101000000"/><high value="20020101000010"/></effectiveTime>'
        '<component><sequenceSet><component><sequence><code code="TIME_ABSOLUTE"/>'
        '<value xsi:type="GLIST_TS"><head value="20020101000000.000"/><increment value="0.002" unit="s"/></value>'
        f"</sequence></component>{''.join(leads)}</sequenceSet></component></series></component></AnnotatedECG>"
    )


def hostile_clinical_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Every hostile clinical file, written into ``folder``: name -> (path, words its named error contains)."""
    folder.mkdir(parents=True, exist_ok=True)
    xml = {
        "xml_billion_laughs": (muse_xml(doctype=BOMB, name="&i;"), "entity"),
        "xml_external_entity": (muse_xml(doctype=XXE, name="&x;"), "entity"),
        "xml_bad_base64": (muse_xml(data="!!not base64@@"), "Base64"),
        "xml_lying_count": (muse_xml(count=10**9), "LeadSampleCountTotal"),
        "xml_wrong_lead_codes": (muse_xml(leads=tuple(f"X{i}" for i in range(8))), "missing lead"),
    }
    out = {}
    for name, (text, words) in xml.items():
        (folder / f"{name}.xml").write_text(text, encoding="latin-1")
        out[name] = (folder / f"{name}.xml", words)
    out["dcm_gigabyte_declared"] = (
        dicom_ecg(folder / "dcm_gigabyte_declared.dcm", declared=45_000_000),
        "samples in all",
    )
    out["dcm_ct_image"] = (dicom_ecg(folder / "dcm_ct_image.dcm", sop=CT_SOP), "not an ECG waveform")
    out["dcm_no_waveform"] = (dicom_ecg(folder / "dcm_no_waveform.dcm", waveform=False), "Waveform Sequence")
    # issue 35: decoder bombs and scales that would silently change the signal
    out["dcm_deflated_bomb"] = (
        deflated_dicom_bomb(folder / "dcm_deflated_bomb.dcm", padding_bytes=64 * 2**20),
        "inflates to more than 32 MiB",
    )
    out["dcm_negative_sensitivity"] = (
        dicom_ecg(folder / "dcm_negative_sensitivity.dcm", n=1000, scales={"ChannelSensitivity": "-1.25"}),
        "negative",
    )
    out["xml_xli_bomb"] = (xli_bomb(folder / "xml_xli_bomb.xml", n_codes=6_000), "Philips XLI chunk 1")
    scaled = {
        "xml_aecg_nan_scale": (aecg_xml(n=1000, scale="NaN"), "not finite"),
        "xml_muse_negative_scale": (muse_xml(n=1000).replace(">4.88<", ">-1<"), "negative"),
    }
    for name, (text, words) in scaled.items():
        (folder / f"{name}.xml").write_text(text, encoding="latin-1")
        out[name] = (folder / f"{name}.xml", words)
    return out


READ_SCRIPT = """
import sys, time
from ecglens.io import RecordError, read_record
start = time.perf_counter()
try:
    read_record(sys.argv[1], **({"sampling_rate_hz": float(sys.argv[2])} if len(sys.argv) > 2 else {}))
    outcome = "read"
except RecordError as error:
    outcome = f"{type(error).__name__}: {error.reason}"
print(time.perf_counter() - start)
print(int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024)
print(outcome)
"""


def read_in_a_fresh_process(path: Path, sampling_rate_hz: float | None = None) -> tuple[str, float, float]:
    """Read ``path`` with `ecglens.io.read_record` in a new process: the outcome (the error's type and reason, or
    'read'), the read's seconds and the process's peak resident MB (``VmHWM``, which starts afresh at exec)."""
    rate = [] if sampling_rate_hz is None else [str(sampling_rate_hz)]
    command = [sys.executable, "-c", READ_SCRIPT, str(path), *rate]
    run = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if run.returncode:
        raise RuntimeError(run.stderr[-2000:])
    seconds, peak, outcome = run.stdout.strip().split("\n", 2)
    return outcome, float(seconds), float(peak)


def lzw_codes(codes: np.ndarray) -> bytes:
    """10-bit codes packed most significant bit first, as Philips XLI's LZW stream (and ecgdatakit) reads them."""
    bits = ((codes[:, None] >> np.arange(9, -1, -1)) & 1).astype(np.uint8).ravel()
    return np.packbits(bits).tobytes()


def xli_bomb_chunk(n_codes: int) -> bytes:
    """One XLI chunk whose LZW stream grows a run of zeros to the table's longest string (768 bytes) and then
    repeats that string: 10 bits that inflate to 768 bytes, so ``n_codes`` codes hold about 768 x ``n_codes``
    bytes once decoded."""
    growing = np.arange(256, 1023)
    codes = np.concatenate([[0], growing, np.full(max(n_codes - 1 - len(growing), 0), 1022)])
    body = lzw_codes(codes.astype(np.int64))
    return len(body).to_bytes(4, "little") + bytes(2) + (0).to_bytes(2, "little") + body


def sierra_103_xml(
    blob: bytes,
    duration_ms: int = 10_000,
    rate: int = 500,
    resolution: str = "5",
    leads: int = 12,
    compressed: bool = True,
) -> str:
    """A Philips Sierra ECG 1.03 file around ``blob`` (the ``<parsedwaveforms>`` bytes, XLI when ``compressed``,
    else 16-bit samples), base64 encoded; ``resolution`` is ``<signalresolution>`` as written."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<restingecgdata xmlns="http://www3.medical.philips.com">'
        "<documentinfo><documenttype>SierraECG</documenttype><documentversion>1.03</documentversion></documentinfo>"
        "<dataacquisition><signalcharacteristics>"
        f"<samplingrate>{rate}</samplingrate><signalresolution>{resolution}</signalresolution>"
        "<acquisitiontype>STD-12</acquisitiontype><bitspersample>16</bitspersample><signaloffset>0</signaloffset>"
        f"<signalsigned>True</signalsigned><numberchannelsallocated>{leads}</numberchannelsallocated>"
        f"<numberchannelsvalid>{leads}</numberchannelsvalid><leadset>STD-12</leadset>"
        "</signalcharacteristics></dataacquisition><patient><generalpatientdata><patientid>NOBODY</patientid>"
        "</generalpatientdata></patient><waveforms>"
        f'<parsedwaveforms compressflag="{compressed}" compressmethod="{"XLI" if compressed else "None"}" '
        f'dataencoding="Base64" durationperchannel="{duration_ms}" nbitspersample="16">'
        f"{base64.b64encode(blob).decode()}</parsedwaveforms></waveforms></restingecgdata>"
    )


def xli_bomb(path: Path, n_codes: int = 60_000, chunks: int = 12) -> Path:
    """A Philips 1.03 file whose XLI leads each decode to about 768 x ``n_codes`` bytes (46 MB each by default)
    from 75 kB: a compression bomb for a decoder without a bound."""
    path.write_text(sierra_103_xml(xli_bomb_chunk(n_codes) * chunks))
    return path


def deflated_dicom_bomb(path: Path, padding_bytes: int = 200 * 2**20) -> Path:
    """A DICOM 12-lead ECG in Deflated Explicit VR Little Endian whose waveform is ``padding_bytes`` of zeros
    (12 channels x ``padding_bytes / 24`` samples, declared to match): about 200 kB on disk, 200 MB once inflated
    and 100 million samples once decoded. Written as a stream: the test never holds the inflated dataset."""
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    plain = dicom_ecg(path.with_suffix(".plain.dcm"), n=1000)
    ds = dcmread(plain)
    plain.unlink()
    marker = b"ECGLENS-MARKER-!"
    group = ds.WaveformSequence[0]
    group.NumberOfWaveformSamples = padding_bytes // 24
    group.WaveformData = marker
    group.is_undefined_length_sequence_item = True  # lengths that do not count the waveform: delimiters end them
    ds["WaveformSequence"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    head, body = DicomBytesIO(), DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, ds.file_meta, enforce_standard=True)
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    data = body.getvalue()
    at = data.index(marker)  # the value of (5400,1010) OW: its 4-byte length just before it
    before = data[: at - 4] + padding_bytes.to_bytes(4, "little")
    after = data[at + len(marker) :]
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [packer.compress(before)]
    zeros, left = bytes(1 << 22), padding_bytes
    while left:
        parts.append(packer.compress(zeros[: min(left, len(zeros))]))
        left -= min(left, len(zeros))
    parts.extend([packer.compress(after), packer.flush()])
    path.write_bytes(head.getvalue() + b"".join(parts))
    return path


def deflated_dicom(path: Path, n: int = 5000) -> Path:
    """A well-formed deflated DICOM 12-lead ECG (no padding)."""
    from pydicom import dcmread
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    plain = dicom_ecg(path.with_suffix(".plain.dcm"), n=n)
    ds = dcmread(plain)
    plain.unlink()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path
