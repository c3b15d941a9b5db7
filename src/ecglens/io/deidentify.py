"""Free text of a clinical file kept free of personal data: a statement that could identify a person is dropped.

A cart's or an over-reader's statements ("Sinus rhythm", "Left bundle branch block") are worth showing beside
ecglens's decisions, but free text can hold anything: "ID PIDX 9731246 follow up", "born 19.02.1937",
"Call Vrensko at 555-0199". Redacting a part of such a line is a guess about where the personal data ends, so a
statement is never edited: it is kept whole or dropped whole, and the drops are counted
(``Record.statements_left_out``). When in doubt, it is dropped.

What makes a statement personal (`Scrubber.leaks`):

- **the file's own values as patterns, not strings.** Person names in every stored form: a DICOM person name
  ``Family^Given^Middle^Prefix^Suffix`` is split by pydicom's `PersonName`, ``Vrensko^Dr`` gives ``Vrensko``;
  every name component of 3 letters or more (titles such as Dr, MD, Jr left aside) matches on its own, as a
  whole word, in any case, accents folded on both sides and in German transliteration (``Müller`` finds
  "mueller", "MULLER"). A shorter component ("An") or one that is an ECG word (``CLINICAL_WORDS``: "Block",
  "White") matches only beside another component of the name or a title ("Anna Block", "Dr Block"). Ids of 6
  characters or more match with any separator between their characters (``PIDX9731246`` matches ``PIDX
  9731246`` and ``pidx-973-1246``), and every run of 5 or more digits of an id matches alone, leading zeros
  optional (``00123456`` finds "123 456"). A birth or acquisition date matches in every common form: ISO,
  DD.MM.YYYY, MM/DD/YYYY (any of ``-./`` and spaces), YYYYMMDD, two-digit years, month names (``19 Feb
  1937``, ``February 19, 1937``). Every other identifying value the reader found (history, place,
  institution) matches verbatim, except an ECG word, and a place's code of 1 to 3 digits (MUSE ``Location``
  105) only after a place word ("location 105").
- **the staff and places the library does not expose**, re-read from the file: GE MUSE ordering, referring,
  acquiring and over-reading staff (``OrderingMDLastName``, ``AcquisitionTechID``, ``OverreaderFirstName``,
  ...), its ``Site``, ``SiteName``, ``Location``, ``LocationName``, ``HISLocation``, ``RoomID`` and order
  numbers, Philips operators, clinicians, editors and signature lines (through defusedxml, as the library
  reads XML), and DICOM's person names, ids, dates, addresses and telephone numbers among the attributes of
  PS3.15's basic confidentiality profile (``ReferringPhysicianName``, ``OperatorsName``,
  ``PerformingPhysicianName``, ``PhysiciansOfRecord``, ``NameOfPhysiciansReadingStudy``, ...; pydicom,
  header only).
- **generic patterns**, whatever the file's fields hold: any date with a four-digit year, a two-digit year
  with one separator repeated (``3/3/41``, ``41-03-03``) or a month name (``03MAR1941``), telephone numbers
  (US layouts, ``+`` numbers, 9 digits or more in groups: ``0151 496 0000``), e-mail addresses, numbers of 6
  digits or more, the words that announce personal data (DOB, born, MRN, SSN, ``ID`` or ``Case`` followed by
  a number), and a name-like word (`name_like`: capitalised, not an ECG word) after a title (``Dr Who``,
  ``Mrs Hudson``), beside a degree (``Garg MD``) or after a signature phrase ("Confirmed by Smith",
  "Discussed with Alice"; after "by" in any case), see `announces_person`.

Limits, stated plainly: a person named in free text whose name is in none of the file's fields, and who is
not announced by a title, a degree or a signature phrase ("Alice notified"), is not recognised: no
named-entity model is used. A surname that is an ECG word ("Block") or shorter than 3 letters is found only
beside another part of the name or a title. A bare year, an age, a number of 5 digits or fewer that is not one
of the file's ids, and a telephone number of fewer than 9 digits in a layout other than the US one are kept.
In an all-capitals statement every word is capitalised: a word after "with" or "to" that is not in
``CLINICAL_WORDS`` drops it.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

NOT_NAMES = frozenset(
    " ".join(
        (
            "dr dr. md m.d. mr mrs ms miss prof phd rn np pa do jr sr ii iii iv esq",
            "by at of on in to and the for with from confirmed reviewed signed edited read verified approved",
            "unknown none null nil na n/a not tech technician physician doctor ecg ekg",
            "unconfirmed preliminary diagnosis report interpretation pending final",
        )
    ).split()
)
"""Parts of a stored name that are not a name (titles, suffixes, a signature's words, placeholders): a name
component among them is never a pattern, or "Dr", "II" or "by" would drop every statement that holds them (a
Philips signature line says "Unconfirmed diagnosis" until someone signs)."""
MIN_ID_CHARS = 6
"""An id (its letters and digits) shorter than this is matched only as written, never with separators inside:
``6030`` with separators would find "P-R-T axes 60 30 45"."""
MIN_ID_DIGITS = 5
"""A run of digits of an id shorter than this is not matched alone (with or without separators)."""
MIN_NUMBER_DIGITS = 4
"""A value made of digits alone (a room, a site, a short id) with fewer digits than this is not matched as
written: "105" would drop "QRS 105 ms". A place's short code is matched only after a word that announces
a place ("location 105", "room 12")."""
MIN_NAME_LETTERS = 3
"""A name component with fewer letters than this ("An", "Li") is matched only beside another component of
the same name or a title ("Dr An", "Li, Wei"): alone it would drop every statement holding "an"."""
CLINICAL_WORDS = frozenset(
    " ".join(
        (
            # what an ECG statement is made of: a stored name component among these ("Block", "White", "Early")
            # is matched only beside another component of its name or a title; a capitalised word among these
            # after a signature phrase or a title ("Referred to Cardiology", "DR. REVIEW PENDING") is no name
            "block blocks left right sinus normal abnormal borderline otherwise rhythm rhythms rate rates axis axes",
            "wave waves lead leads bundle branch atrial atrium ventricular ventricle ventricles anterior inferior",
            "posterior lateral septal apical anteroseptal anterolateral inferolateral high low long short early",
            "late acute recent old age undetermined possible possibly probable probably consider marked mild",
            "moderate severe junctional nodal pace paced pacer pacemaker pacing flutter fibrillation tachycardia",
            "bradycardia arrhythmia premature complex complexes beat beats ectopic escape fusion aberrant",
            "aberrancy conduction delay defect degree first second third heart hypertrophy enlargement infarct",
            "infarction ischemia ischemic injury strain repolarization depolarization elevation elevated",
            "depression depressed segment segments interval intervals voltage voltages deviation rotation",
            "clockwise counterclockwise transition pattern change changes nonspecific abnormality",
            "abnormalities intraventricular fascicular hemiblock bifascicular trifascicular preexcitation",
            "wolff parkinson white brugada osborn lown ganong levine mobitz wenckebach sokolow lyon cornell",
            "romhilt estes bazett fridericia framingham hodges einthoven goldberger wilson prolonged shortened",
            "peaked inverted inversion flat flattened biphasic notched tall small poor progression artifact",
            "artefact artifacts noise baseline wander wandering reversal reversed misplaced misplacement",
            "placement electrode electrodes technical quality caution care attention patient patients supine",
            "standing sitting exercise rest resting previous prior compared comparison unchanged significant",
            "no none cardiology cardiologist cardiac clinic department emergency er ed icu ccu ward unit",
            "hospital physician physicians doctor nurse technician staff team fellow resident attending family",
            "computer machine system software program algorithm protocol echo echocardiogram review reviews",
            "pending confirmation confirmed unconfirmed suggested recommended analysis interpretation",
            "statement report repeat repeated follow clinical correlation correlate symptoms medication",
            "digitalis drug effect electrolyte standard limb limbs precordial chest strip criteria adult",
            "pediatric extreme sample data the a an this that his her their our",
            "lvh rvh lbbb rbbb lafb lpfb avb pvc pvcs pac pacs afib st qt qtc qrs pr rsr wpw mi ami stemi nstemi",
        )
    ).split()
)
"""Words of ECG statements and of the phrases around a signature, lower case. Kept as data: a word added here
stops being a name on its own (it still is beside another part of the name or after a title)."""
_SEP = r"[\s\-./_:#]?"
"""What may stand between two characters of an id in free text: nothing, a space, a dash, a dot, a slash."""
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH_NUMBER = r"(?:0?[1-9]|1[0-2])"
_NOT_VERSION = r"(?<!\bv )(?<!\bv\. )(?<!\bver )(?<!\bver\. )(?<!\bversion )(?<!\brelease )"
GENERIC = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        # dates with a four-digit year: 19.02.1937, 02/19/1937, 1937-02-19, 19370219, 19 Feb 1937, Feb 19, 1937
        r"(?<!\d)\d{1,2}\s?[-./]\s?\d{1,2}\s?[-./]\s?(?:1[89]|2\d)\d{2}(?!\d)",
        r"(?<!\d)(?:1[89]|2\d)\d{2}\s?[-./]\s?\d{1,2}\s?[-./]\s?\d{1,2}(?!\d)",
        r"(?<!\d)(?:1[89]|2\d)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\d)",
        rf"(?<!\d)\d{{1,2}}(?:st|nd|rd|th)?[\s\-./]*{_MONTH}(?![a-z])\.?[\s\-./,]*(?:\d{{4}}|'?\d{{2}})(?!\d)",
        # dates with a two-digit year, one separator repeated: 3/3/41 (day or month first), 41-03-03; not a
        # version ("version 2.10.11", "v 2.10.11")
        rf"{_NOT_VERSION}(?<![\w./\-]){_DAY}([/.\-]){_MONTH_NUMBER}\1\d{{2}}(?![\w/\-]|[.,]\d)",
        rf"{_NOT_VERSION}(?<![\w./\-]){_MONTH_NUMBER}([/.\-]){_DAY}\1\d{{2}}(?![\w/\-]|[.,]\d)",
        rf"{_NOT_VERSION}(?<![\w./\-])\d{{2}}([/.\-]){_MONTH_NUMBER}\1{_DAY}(?![\w/\-]|[.,]\d)",
        rf"\b{_MONTH}\b\.?[\s\-./]*\d{{1,2}}(?:st|nd|rd|th)?,?[\s\-./]*\d{{4}}(?!\d)",
        rf"\b{_MONTH}\b\.?[\s\-./,]*(?:1[89]|2\d)\d{{2}}(?!\d)",
        # telephone numbers: 555-0199, (555) 123-4567, +44 20 7946 0958
        r"(?<![\d.])\d{3}[-.]\d{4}(?![\d.])",
        r"\(?\b\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}\b",
        r"\+\d[\d\s().-]{7,}\d",
        # international layouts, 9 digits or more in groups: 0151 496 0000, (030) 1234 5678, 01 23 45 67 89
        r"(?<![\w.+\-])(?=(?:[\s().\-]{0,3}\d){9})(?:\(0?\d{1,5}\)[\s.\-]?|0\d{1,4}[\s.\-])\d{2,5}"
        r"(?:[\s.\-]\d{2,5}){0,4}(?![\w\-]|[.,]\d)",
        r"(?<![\w.+\-])(?=(?:[\s.\-]?\d){10})\d{2,5}(?:[\s.\-]\d{3,5}){2,4}(?![\w\-]|[.,]\d)",
        r"\b(?:tel|phone|telephone|fax|mobile|cell|pager|beeper|ext)\b\.?\s*[:#]?\s*\+?\d",
        # e-mail addresses
        r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
        # long numbers (ids, accession and record numbers); social security numbers
        r"(?<!\d)\d{6,}(?!\d)",
        r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)",
        # words that announce personal data
        r"\b(?:d\.?o\.?b|born|birth\s*date|date\s+of\s+birth|birthday|mrn|ssn|nhs\s*(?:no|number)|"
        r"social\s+security|medical\s+record|patient\s*(?:id|no|number|name)|pid|accession)\b",
        r"\bid\b\s*[:#.]?\s*(?:[a-z]+[\s:#.-]*)?\d",
        r"\b(?:case|pt|patient|acct|account|visit|encounter|order|study|mr)\s*(?:no\.?|number|#)?\s*[:#]?\s*\d{3,}",
    )
)
"""Patterns that make any statement personal, whatever the file's fields hold (a person announced by a title
or a signature phrase is `announces_person`'s)."""


_ARTICLES = frozenset({"the", "a", "an", "his", "her", "their", "our", "my"})
_SIGNATURE = re.compile(
    r"\b(?:confirmed|reviewed|over-?read|interpreted|signed|edited|verified|read|approved|discussed|called|"
    r"dictated|transcribed|ordered|referred|requested|performed|acquired|seen|examined)\s+(by|with|to)\b",
    re.IGNORECASE,
)
"""A signature phrase: a person follows it when the next word is `name_like` (after "by" in any case)."""
_TITLES = r"(?:dr|doctor|prof|professor|mr|mrs|ms|miss|mx)\.?"
_TITLE = re.compile(
    r"\b(?:dr|doctor|prof|professor)\b\.?|(?-i:\b(?:Mr|Mrs|Ms|Miss|Mx|Sr|Sister|Nurse)\b\.?)", re.IGNORECASE
)
"""A title before a name ("Dr Who", "Mrs Hudson"); "Mr", "Ms" only as written so (MS: mitral stenosis)."""
_DEGREE = re.compile(r"(?<![^\W_])(?:M\.?D|Ph\.?D)(?![^\W_])\.?", re.IGNORECASE)
"""A degree after (or before) a name ("Garg MD", "Ruchira Garg, M.D.")."""
_WORD = r"[^\W\d_](?:[^\W\d_]|['\u2019\-](?=[^\W\d_]))*"
"""A word: letters, with an apostrophe or a hyphen between two of them (``O'Brien``, ``Smith-Jones``)."""
_WORD_AFTER = re.compile(rf"[\s,:;\-]*({_WORD}\.?)")
_WORD_BEFORE = re.compile(rf"({_WORD})[\s,]*$")
_FOLDED = str.maketrans(
    {"ß": "ss", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "æ": "ae"}
    | {"Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "Th", "ı": "i"}
)
"""Letters NFKD leaves whole, written as their base letters."""
_GERMAN = str.maketrans({"ü": "ue", "ö": "oe", "ä": "ae", "Ü": "Ue", "Ö": "Oe", "Ä": "Ae", "ß": "ss"})


def fold(text: str) -> str:
    """``text`` without accents, case kept: NFKD, combining marks dropped, ``ß ø ł æ œ ...`` spelled out
    (``Müller^José`` -> ``Muller^Jose``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).translate(_FOLDED)


def spellings(text: str) -> list[str]:
    """``text`` as written, folded (`fold`), and folded after the German transliteration (``ü`` -> ``ue``,
    ``ß`` -> ``ss``): ``Müller`` -> ``Müller``, ``Muller``, ``Mueller``. Both a stored name and a statement are
    compared in every spelling, so ``Mueller`` stored finds "Müller" written, and the other way round."""
    return list(dict.fromkeys((text, fold(text), fold(unicodedata.normalize("NFC", text).translate(_GERMAN)))))


def _clinical(word: str) -> bool:
    """Whether ``word`` is an ECG or signature-phrase word (`CLINICAL_WORDS`), a title or a placeholder."""
    low = fold(word).lower().strip(".")
    return low in CLINICAL_WORDS or low in NOT_NAMES or low.replace(".", "") in NOT_NAMES


def name_like(word: str, any_case: bool = False) -> bool:
    """Whether ``word`` could be a person's name: capitalised (any case with ``any_case``), not an ECG or
    signature-phrase word, and two letters or more or an initial with its dot (``J.``)."""
    bare = word.rstrip(".")
    if not bare or _clinical(bare):
        return False
    if sum(c.isalpha() for c in bare) < 2 and not word.endswith("."):
        return False
    return any_case or bare[0].isupper()


def _person_after(text: str, at: int, any_case: bool = False) -> bool:
    """Whether the word after position ``at`` (past an article) is `name_like`."""
    for _ in range(3):
        match = _WORD_AFTER.match(text, at)
        if match is None:
            return False
        word = match.group(1)
        if fold(word).lower() not in _ARTICLES:
            return name_like(word, any_case)
        at = match.end()
    return False


def announces_person(text: str) -> bool:
    """Whether ``text`` names someone after a signature phrase ("Confirmed by Smith", "Discussed with Alice";
    after "by", a word in any case that is no ECG word: "confirmed by someone"), after a title ("Dr Who", "Mrs
    Hudson"), or beside a degree ("Garg MD"). "Interpreted with caution", "Referred to cardiology", "MD review
    suggested" and "Dr. review pending" name no one."""
    for match in _SIGNATURE.finditer(text):
        if _person_after(text, match.end(), any_case=match.group(1).lower() == "by"):
            return True
    for match in _TITLE.finditer(text):
        if _person_after(text, match.end()):
            return True
    for match in _DEGREE.finditer(text):
        before = _WORD_BEFORE.search(text, max(0, match.start() - 80), match.start())
        if (before is not None and name_like(before.group(1))) or _person_after(text, match.end()):
            return True
    return False


@dataclass(frozen=True)
class Scrubber:
    """The patterns that make a statement personal (`leaks`), and the statements kept (`keep`)."""

    patterns: tuple[re.Pattern[str], ...]

    def leaks(self, text: str) -> bool:
        """Whether ``text`` could identify a person: a pattern matches it, or it `announces_person`, in any of
        its `spellings` (accents folded, German transliteration)."""
        return any(
            any(pattern.search(variant) for pattern in self.patterns) or announces_person(variant)
            for variant in spellings(text)
        )

    def keep(self, statements: Sequence[str]) -> tuple[tuple[str, ...], int]:
        """The statements that could identify no one, in order, and how many were dropped."""
        kept = tuple(s for s in statements if not self.leaks(s))
        return kept, len(statements) - len(kept)


NAME_FIELDS = frozenset(
    {"patient name", "first name", "last name", "middle name", "technician", "referring physician", "interpreter"}
)
ID_FIELDS = frozenset({"patient id"})
DATE_FIELDS = frozenset({"birth date", "acquired"})
PLACE_KINDS = ("location", "room", "site", "institution", "department", "ward", "bed", "address")
"""A field whose kind holds one of these is a place: a short code of digits alone is matched only after a word
announcing a place (`MIN_NUMBER_DIGITS`)."""
_PLACE_WORDS = r"(?:loc(?:ation)?|site|room|rm|ward|bed|unit|floor|dept|department)"


def _word(text: str) -> str:
    """``text`` as a whole word (no letter on either side)."""
    return rf"(?<![^\W\d_]){re.escape(text)}(?![^\W\d_])"


def scrubber(fields: Iterable[tuple[str, str]], days: Iterable[date] = ()) -> Scrubber:
    """The scrubber for one file's identifying ``fields`` (kind, value) and ``days`` (birth, acquisition).

    A field whose kind ends in ``name``, ``physician``, ``technician``, ``clinician``, ``operator`` or
    ``interpreter`` is a person name (`name_patterns`); one ending in ``id``, ``number`` or ``telephone`` is an
    id (`id_patterns`); a date field's value also gives its day. Every other value (a place, an institution,
    history) matches as written and as an id. A value that is an ECG word ("Cardiology"), or digits alone
    shorter than `MIN_NUMBER_DIGITS` (a place's short code: only after "location", "room", ...), is not
    matched as written.
    """
    patterns: dict[str, re.Pattern[str]] = {}
    days = set(days)

    def add(pattern: str) -> None:
        patterns.setdefault(pattern, re.compile(pattern, re.IGNORECASE))

    for kind, value in fields:
        value = str(value).strip()
        if len(value) < 2 or value.lower() in NOT_NAMES:
            continue
        kind = kind.lower()
        if kind in DATE_FIELDS or kind.endswith(("date", "datetime")) or kind in ("dateofbirth", "birthdate"):
            add(rf"(?<!\w){re.escape(value)}(?!\w)")
            day = parse_day(value)
            if day is not None:
                days.add(day)
            continue
        is_name = kind in NAME_FIELDS or kind.endswith(
            ("name", "physician", "clinician", "operator", "interpreter", "editor", "signature")
        )
        is_id = kind in ID_FIELDS or kind.endswith(("id", "number", "telephone", "mrn"))
        if is_name:
            for pattern in name_patterns(value):
                add(pattern)
            if not is_id:
                continue
        digits = re.fullmatch(r"[\d\s\-./#]+", value) is not None
        if digits and sum(c.isdigit() for c in value) < MIN_NUMBER_DIGITS:
            if any(word in kind for word in PLACE_KINDS):
                bare = "".join(c for c in value if c.isdigit()).lstrip("0") or "0"
                add(rf"\b{_PLACE_WORDS}\b\.?\s*(?:no\.?|number|#)?\s*[:#]?\s*0*{bare}(?!\d)")
            continue
        if _clinical(value):
            continue
        add(rf"(?<!\w){re.escape(value)}(?!\w)")
        for pattern in id_patterns(value):
            add(pattern)
    for day in days:
        for pattern in date_patterns(day):
            add(pattern)
    return Scrubber((*patterns.values(), *GENERIC))


def name_patterns(value: str) -> list[str]:
    """Patterns of one stored person name (`name_parts`), each in every `spelling <spellings>`: a component
    of 3 letters or more (`MIN_NAME_LETTERS`; or ideographs) that is no ECG word (`CLINICAL_WORDS`) as a whole
    word alone; a shorter one or an ECG word ("Block", "An") only beside another component of the same name
    ("Anna Block", "Block, Anna"), after a title ("Dr Block") or before a degree ("Block MD"); a component
    with digits (a staff number stored as a name, ``T4711``) as written and as an id; the whole value as
    written when it holds two components or more."""
    parts = name_parts(value)
    out = [rf"(?<!\w){re.escape(value)}(?!\w)"] if len(parts) > 1 else []
    words = [part for part in parts if not any(c.isdigit() for c in part)]
    for part in parts:
        if part not in words:
            # a date inside a signature line is left to the date patterns, or its year alone would drop every
            # statement naming that year
            out += [_word(part), *id_patterns(part)] if part.isalnum() else []
    for part in words:
        letters = sum(c.isalpha() for c in part)
        wide = any(unicodedata.east_asian_width(c) in "WF" for c in part)
        if (letters >= MIN_NAME_LETTERS or wide) and not _clinical(part):
            out += [_word(spelling) for spelling in spellings(part)]
            continue
        weak = "|".join(re.escape(s) for s in spellings(part))
        others = "|".join(re.escape(s) for other in words if other != part for s in spellings(other))
        beside = rf"(?:{others}|{_TITLES})" if others else _TITLES
        out.append(
            rf"(?<![^\W\d_])(?:(?:{weak})[\s,.\-]{{1,3}}(?:{others or '(?!)'}|M\.?D|Ph\.?D)|"
            rf"{beside}[\s,.\-]{{1,3}}(?:{weak}))(?![^\W\d_])"
        )
    return out


def name_parts(value: str) -> list[str]:
    """The components of a stored person name that could name someone on their own: ``Vrensko^Dr`` ->
    ``["Vrensko"]``, ``"Garg, Ruchira M.D."`` -> ``["Garg", "Ruchira"]``. A DICOM person name (with ``^``) is
    split by pydicom's `PersonName` where pydicom is installed (alphabetic, ideographic and phonetic groups,
    each into family, given, middle, prefix and suffix); every component is then split at spaces and
    punctuation, and titles, suffixes and words of one letter are left out (`NOT_NAMES`)."""
    pieces = [value]
    if "^" in value or "=" in value:
        try:
            from pydicom.valuerep import PersonName

            person = PersonName(value)
            groups = [person, *(PersonName(g) for g in (person.ideographic, person.phonetic) if g)]
            pieces = [
                part
                for group in groups
                for part in (
                    group.family_name,
                    group.given_name,
                    group.middle_name,
                    group.name_prefix,
                    group.name_suffix,
                )
                if part
            ] or [value]
        except Exception:  # pydicom absent or a value it cannot split: split by hand below
            pieces = [value]
    out: list[str] = []
    for piece in pieces:
        for part in re.split(r"[\s^=,;:()/\\\"]+", piece):
            part = part.strip(".'-_")
            letters = sum(c.isalpha() for c in part)
            if letters >= 2 and part.lower() not in NOT_NAMES and part.lower().replace(".", "") not in NOT_NAMES:
                out.append(part)
    return list(dict.fromkeys(out))


def id_patterns(value: str) -> list[str]:
    """Patterns of an id in free text: its letters and digits with any one separator between each two
    (``PIDX9731246`` finds ``PIDX 9731246``, ``pidx-973-1246``) when there are `MIN_ID_CHARS` of them or more,
    and each run of `MIN_ID_DIGITS` digits or more alone, with the same freedom and its leading zeros optional
    (``00123456`` finds ``123 456``)."""
    chars = [c for c in value if c.isalnum()]
    out = []
    if len(chars) >= MIN_ID_CHARS:
        out.append(r"(?<![^\W_])" + _SEP.join(re.escape(c) for c in chars) + r"(?![^\W_])")
    for run in re.findall(r"\d+", "".join(chars) if len(chars) < 64 else value):
        bare = run.lstrip("0")
        if len(bare) >= MIN_ID_DIGITS:
            out.append(r"(?<!\d)(?:0" + _SEP + ")*" + _SEP.join(bare) + r"(?!\d)")
    return list(dict.fromkeys(out))


def parse_day(value: Any) -> date | None:
    """A date from a `date`, a `datetime`, or text in ISO, DICOM (``YYYYMMDD``) or US form; None otherwise."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    for form in ("%Y-%m-%d", "%Y%m%d", "%m-%d-%Y", "%m/%d/%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(text[:10] if form != "%Y%m%d" else text[:8], form).date()
        except ValueError:
            continue
    return None


def date_patterns(day: date) -> list[str]:
    """Patterns of one day in every common written form: year-month-day, day-month-year and month-day-year
    with any of ``-./`` or spaces (or nothing) between, with or without leading zeros, with a four- or
    two-digit year, and with the month's name in full or cut to three letters."""
    y, m, d = day.year, day.month, day.day
    year = rf"(?:{y}|'?{y % 100:02d})"
    month = rf"0?{m}" if m < 10 else str(m)
    dd = rf"0?{d}" if d < 10 else str(d)
    sep = r"\s?[-./\s]?\s?"  # with a four-digit year: 19.02.1937, 19 02 1937, 19021937
    sep2 = r"\s?[-./]\s?"  # with a two-digit year, a separator is needed: 19.02.37, 02/19/37
    name = _MONTHS[m - 1]
    named = rf"(?:{name[:3]}(?:{name[3:]})?\.?)"
    ordinal = r"(?:st|nd|rd|th)?"
    return [
        rf"(?<!\d){y}{sep}{month}{sep}{dd}(?!\d)",
        rf"(?<!\d){dd}{sep}{month}{sep}{y}(?!\d)",
        rf"(?<!\d){month}{sep}{dd}{sep}{y}(?!\d)",
        rf"(?<!\d){dd}{sep2}{month}{sep2}'?{y % 100:02d}(?!\d)",
        rf"(?<!\d){month}{sep2}{dd}{sep2}'?{y % 100:02d}(?!\d)",
        rf"(?<!\d){y}{m:02d}{d:02d}(?!\d)",
        rf"(?<!\d){dd}{ordinal}[\s\-./,]*(?:of\s+)?{named}[\s\-./,]*{year}(?!\d)",
        rf"\b{named}[\s\-./]*{dd}{ordinal},?[\s\-./]*{year}(?!\d)",
        rf"\b{y}[\s\-./]*{named}[\s\-./]*{dd}(?!\d)",
    ]


# ---- staff and other personal fields the library does not expose, re-read from the file --------------------

XML_FIELDS = re.compile(
    r"(physician|clinician|operator|technician|tech(first|last|middle)?name|techid|overreader|editor|confirmer|"
    r"signatureline|md(first|last|middle)?name|mdid|(first|last|middle|birth|maiden)name|^given$|^family$|^prefix$|"
    r"^suffix$|^mrn$|patientid|secondaryid|telephone|phone|email|^birthdate$|^dateofbirth$|"
    r"requisitionnumber|accountnumber|ordernumber|hisid$)"
)
PLACE_TAGS = re.compile(
    r"^(?:site|sitename|location|locationname|hislocation|room|roomid|bed|ward|institution\w*|department\w*)$"
)
"""XML elements (local names, lower case) that hold a place: GE MUSE ``Site``, ``SiteName``, ``Location`` (a
code), ``LocationName``, ``HISLocation``, ``RoomID``; Philips institution and department."""
"""XML elements (local names, lower case) that hold a person's name, an id or a contact: GE MUSE, Philips
Sierra/PageWriter and HL7 aECG (``<given>``, ``<family>``)."""
_SKIPPED_ATTRIBUTES = frozenset({"date", "time", "root", "type", "use", "nullflavor", "codesystem", "code"})
_PN, _ID, _DATE, _PLACE = "name", "id", "date", "address"
DICOM_FIELDS = {
    "PatientName": _PN,
    "OtherPatientNames": _PN,
    "PatientBirthName": _PN,
    "PatientMotherBirthName": _PN,
    "ReferringPhysicianName": _PN,
    "ConsultingPhysicianName": _PN,
    "PerformingPhysicianName": _PN,
    "PhysiciansOfRecord": _PN,
    "NameOfPhysiciansReadingStudy": _PN,
    "OperatorsName": _PN,
    "RequestingPhysician": _PN,
    "ScheduledPerformingPhysicianName": _PN,
    "ResponsiblePerson": _PN,
    "PatientID": _ID,
    "OtherPatientIDs": _ID,
    "AccessionNumber": _ID,
    "StudyID": _ID,
    "AdmissionID": _ID,
    "PatientTelephoneNumbers": _ID,
    "PatientAddress": _PLACE,
    "InstitutionAddress": _PLACE,
    "PatientBirthDate": _DATE,
    "StudyDate": _DATE,
    "AcquisitionDateTime": _DATE,
    "ContentDate": _DATE,
}
"""The DICOM attributes read for patterns: the person names, ids, contacts and dates among PS3.15's basic
application level confidentiality profile (Table E.1-1) that an ECG file carries."""
MAX_VALUE_CHARS = 200
"""A value longer than this is free text, not a name or an id: matched verbatim only through the reader's own
fields, never split into patterns."""


def staff_fields(path: str | Path, format_id: str) -> list[tuple[str, str]]:
    """The names, ids, contacts and dates a file holds beyond what the library exposes, as (kind, value): the
    staff of a GE MUSE or Philips file (XML through defusedxml, entity declarations refused), a DICOM file's
    person names, ids and dates (pydicom, header only). Empty for another format, or when the file cannot be
    re-read (the library has read it already; the generic patterns still apply)."""
    try:
        if format_id == "dicom":
            return _dicom_fields(Path(path))
        if format_id in ("ge-muse-xml", "philips-xml", "hl7-aecg"):
            return _xml_fields(Path(path))
    except Exception as error:  # a file the library read but this second look cannot: the generic patterns hold
        logger.debug("staff fields not re-read (%s)", type(error).__name__)
    return []


def _xml_fields(path: Path) -> list[tuple[str, str]]:
    from defusedxml.ElementTree import iterparse

    out = []
    for _, element in iterparse(str(path), events=("end",), forbid_dtd=False):
        tag = element.tag.rsplit("}", 1)[-1].lower() if isinstance(element.tag, str) else ""
        if XML_FIELDS.search(tag) or PLACE_TAGS.match(tag):
            values = [element.text or ""] + [
                v for k, v in element.attrib.items() if k.rsplit("}", 1)[-1].lower() not in _SKIPPED_ATTRIBUTES
            ]
            kind = "signature" if "signature" in tag else tag
            if PLACE_TAGS.match(tag):
                kind = "location"
            elif tag.endswith(("id", "mrn")):
                kind = "id"
            out += [(kind, v.strip()) for v in values if v and v.strip() and len(v.strip()) <= MAX_VALUE_CHARS]
        if len(element):  # a parent's children are done: free them (the waveform text is the bulk)
            element.clear()
        elif element.text and len(element.text) > MAX_VALUE_CHARS:
            element.text = None
    return out


def _dicom_fields(path: Path) -> list[tuple[str, str]]:
    import pydicom
    from pydicom.multival import MultiValue

    header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(DICOM_FIELDS))
    out = []
    for keyword, kind in DICOM_FIELDS.items():
        value = header.get(keyword)
        values = list(value) if isinstance(value, MultiValue) else [value]
        for one in values:
            text = "" if one is None else str(one).strip()
            if text and len(text) <= MAX_VALUE_CHARS:
                out.append((kind, text))
    return out
