"""From OCR words to padded redaction boxes: lines, NER spans, header matches, allow-list.

Pure functions, no Tesseract and no model: the NER is passed in as a callable
from text to spans, so the mapping is tested with canned OCR output.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from icapdlp.pixels.denylist import DenyList, normalize
from icapdlp.pixels.geometry import SOURCE_ALL_TEXT, SOURCE_HEADER, SOURCE_NER, Box, Redaction
from icapdlp.pixels.ocr import OcrWord
from icapdlp.pixels.recognizers import STRUCTURAL, TITLES

#: a word joins a line when it overlaps the line vertically by this fraction of its height
LINE_OVERLAP = 0.5
#: ... and starts at most this many word heights after the line's last word (2.0 split "Dr [S.] Moreau"
#: when OCR lost the initial)
LINE_GAP_HEIGHTS = 2.5
#: ... on a turned crop (a side label along the frame's edge) up to this many: OCR loses short groups of a
#: turned value more often ("+31 [10] 952 2501" read without "10", 3.75 heights between "+31" and "952"), and
#: the value's recogniser then needs the pieces on either side in one line (seeds 4000/6000/8000: one more
#: turned value masked each; 5.5 masked no more and redacted more outside)
TURNED_LINE_GAP_HEIGHTS = 4.0
#: a redaction grows over the unread ink of the text region its words were read in when that region is at
#: most this many times the words' height: one line (ascenders and descenders of other words included),
#: not two lines nor a line merged with anatomy
UNREAD_INK_REGION_HEIGHTS = 1.8
#: ... or at most this tall (frame pixels), whatever the words' boxes say: two lines of the smallest overlay
#: text (8 px) need more, and Tesseract gives pieces of 8 px text boxes 2-3 px tall
ONE_LINE_PX = 12
#: the same word read in both polarities: boxes overlapping this much are one word
DUPLICATE_IOU = 0.5
#: an unconfident word this much covered by confident words is their other-polarity shadow
#: (0.5 left "Lerases", 0.49 covered, splitting "Springfield General Hospital"; 0.4 and 0.5 read
#: the same on two held-out sets of 36 images)
SHADOW_COVERED = 0.4
#: two words read in different views (polarity or turn) are readings of the same ink when they overlap by this
#: share of the smaller box
COMPETING_OVERLAP = 0.3
#: consecutive words joined when matching split renderings of IDs and dates
MAX_JOINED_WORDS = 5
#: ends each OCR line in the NER text: as a sentence of its own spaCy tags "Seattle" alone,
#: and no entity span runs from one overlay line into the next
LINE_END = ".\n"
#: an unconfident word taller than this many median confident-word heights is not text
MAX_HEIGHT_RATIO = 2.5
#: ... nor is one that tall read with less than this confidence: a wrong-polarity reading of a
#: plate or of letter gaps ("OE", conf 46, 89 px over 9-30 px words) spans several real lines
TALL_WORD_MIN_CONF = 60.0
#: degrees written between a title and a name ("Dr. med.", "Dr. rer. nat.")
NAME_DEGREES = frozenset({"MED", "RER", "NAT", "PHIL", "HC", "DENT", "VET", "JUR", "MD", "PHD"})
#: a word that only the statistical NER tags must have been read at least this confidently: OCR noise on
#: anatomy (bone edges, trabeculae, foliage in photographs) reads as short letter salad that spaCy calls a
#: PERSON or a LOCATION ("Ilil", "Wes"). Shape recognisers (dates, IDs, titles) keep the policy's floor.
NER_MIN_WORD_CONF = 75.0
#: ... and have at least this many letters or digits ("va" on a photograph is no Virginia)
MIN_NER_WORD_CHARS = 3
#: ... and be made of more than thin strokes: "Ilil", "lIl1" are what vertical edges read as
THIN_GLYPHS = frozenset("Iil1|!jJ.,:;'`()[]{}/\\-_")
MAX_THIN_SHARE = 0.5
#: words announcing the PHI value after them on the same line (normalised: upper case, letters and digits)
VALUE_LABELS = frozenset({"SSN", "MRN", "MR", "DOB", "BORN", "ACC", "ACCNO", "ACCESSION", "PID", "PATID",
                          "PATIENTID", "ID", "PATIENT", "NAME", "TEL", "PH", "PHONE", "FAX", "EMAIL", "NHS",
                          "NHI", "INSEE", "BSN", "AHV",
                          "GEBDAT", "GEB", "NE", "NEE"})
#: ... at most this many words of it
MAX_LABELLED_WORDS = 4
#: a word this close (in glyph heights) to a PHI word of its line, and itself a fragment or unconfidently
#: read, is a piece of the same value that OCR broke ("OKO" "HARUTO", "R" "828434", "Tocnasz"@24 between
#: "Pr" and "Moreau"): it goes with it. Separate overlay items stand a line height or more apart
FRAGMENT_GAP_HEIGHTS = 1.0
#: ... a fragment: at most this many letters or digits
FRAGMENT_CHARS = 3
#: ... and no taller than this many times the value's glyphs, nor wider per character
FRAGMENT_SIZE_RATIO = 2.0
#: the label of such a box (a closed-set word, like the entity types)
LABELLED_VALUE = "LABELLED_VALUE"
#: characters OCR adds at word ends from plate edges and noise, removed before recognition
STRAY_CHARS = "\"'`“”‘’|¦!¡°«»\\:;,"
#: words of a line closer than this many glyph heights are one string split by OCR, joined without a space
GLUE_GAP_HEIGHTS = 0.12
JOINERS = frozenset("-/@_")  # not ".": "Drs." and "Lindqvist" are two words
JOINER_GAP_HEIGHTS = 0.6
#: ... and wider still between digits: a monospace hyphen has wide side bearings, and Tesseract split
#: "(555) 368-5894" into "368" and "-5894" 0.7 glyph heights apart (a word space is a glyph height or more)
DIGIT_JOINER_GAP_HEIGHTS = 0.85


@dataclass(frozen=True)
class Span:
    """An entity the NER found: character offsets into the analysed text."""

    start: int
    end: int
    entity: str
    score: float
    recognizer: str = ""  # the policy's recogniser name ("" when unknown: treated as statistical NER)


NerFunction = Callable[[str], list[Span]]


@dataclass(frozen=True)
class DetectionPolicy:
    """What counts as text to redact in one object."""

    allow_words: frozenset[str]
    all_text: bool
    min_conf: float
    min_score: float
    padding: int


def _iou(a: Box, b: Box) -> float:
    ix = max(0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union else 0.0


def _covered_share(a: Box, b: Box) -> float:
    """Share of ``a``'s area that ``b`` covers."""
    ix = max(0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0, min(a.y1, b.y1) - max(a.y0, b.y0))
    return ix * iy / (a.width * a.height) if a.width * a.height else 0.0


def dedupe(words: Iterable[OcrWord], min_conf: float = 100.0) -> list[OcrWord]:
    """Drop a word read twice (both polarities), keeping the more confident reading.

    An unconfident reading mostly lying on confident words is the other
    polarity's view of the same text (the gaps between its strokes, "Sinise"
    over "Springfield General"): dropped too, as it would otherwise split the
    line it overlaps and feed garbage to NER.
    """
    kept: list[OcrWord] = []
    for w in sorted(words, key=lambda w: -w.conf):
        if any(_iou(w.box, k.box) >= DUPLICATE_IOU and (k.conf >= min_conf or _view(k) == _view(w)) for k in kept):
            continue  # two unconfident readings in two views both stay: which is right, only its shape can say
        if w.conf < min_conf and sum(_covered_share(w.box, k.box) for k in kept if k.conf >= min_conf) \
                >= SHADOW_COVERED:
            continue
        kept.append(w)
    return kept


def _view(w: OcrWord) -> tuple[int, int]:
    return w.polarity, w.rotation


def weaker_views_dropped(words: list[OcrWord], min_conf: float = 0.0) -> list[OcrWord]:
    """Where two views of one crop read the same ink (light and dark text, or the two turns of a side
    label), keep only the view whose overlapping words were read more confidently.

    Only one view of any ink is right; the other reads the gaps between its strokes, or the glyphs upside
    down. A view wins only with a word read at ``min_conf`` or more: between two unconfident views
    ("s.brandt@rosenthal-hosp.org"@0 and "PENTA"@7 on the same ink) the confidence says nothing, and both
    go on to the recognisers, where only a whole shape counts from such words. Word by word, the wrong view sometimes wins ("(EPSP"@33 over "Rosenthal"@13 beside "General"@89
    and "Hospital"@59), breaking the name it lies in; compared over all the words where the two crops
    overlap (confidence times characters read), the right view wins.
    """
    if len(words) < 2:
        return words
    boxes = np.array([(w.box.x0, w.box.y0, w.box.x1, w.box.y1) for w in words], dtype=np.int64)
    views = np.array([_view(w) for w in words])
    lo, hi = np.maximum(boxes[:, None, :2], boxes[None, :, :2]), np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    ix, iy = np.clip(hi[..., 0] - lo[..., 0], 0, None), np.clip(hi[..., 1] - lo[..., 1], 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    smaller = np.maximum(1, np.minimum(area[:, None], area[None, :]))
    other_view = (views[:, None, :] != views[None, :, :]).any(axis=2)
    competing = np.triu(other_view & (ix * iy >= COMPETING_OVERLAP * smaller), 1)
    crops: dict[tuple, tuple[set[int], set[int]]] = {}
    for a, b in zip(*np.nonzero(competing)):
        ka, kb = (words[a].line[0], *_view(words[a])), (words[b].line[0], *_view(words[b]))
        key, first = ((ka, kb), True) if ka < kb else ((kb, ka), False)
        sides = crops.setdefault(key, (set(), set()))
        sides[0 if first else 1].add(int(a))
        sides[1 if first else 0].add(int(b))
    dropped: set[int] = set()
    for left, right in crops.values():
        read_left, read_right = _confident_chars(words, left), _confident_chars(words, right)
        winner, loser = (left, right) if read_left > read_right else (right, left)
        if read_left != read_right and any(words[i].conf >= min_conf for i in winner):
            dropped |= loser
    return [w for i, w in enumerate(words) if i not in dropped]


def _confident_chars(words: list[OcrWord], picked: set[int]) -> float:
    """Letters and digits read, weighted by confidence: a turned label read horizontally gives single
    glyphs at high confidence ("N"@86), its right turn the whole value at less ("2019-08-22"@28)."""
    return sum(words[i].conf * sum(c.isalnum() for c in words[i].text) for i in picked)


def drop_implausible(words: list[OcrWord], min_conf: float) -> list[OcrWord]:
    """Drop unconfident 'words' much taller than the confident ones that lie on confident words (plate
    edges, noise read as text).

    Such a box can span several real lines; redacting it would erase labels between them. A tall
    unconfident word on its own is a large line of real text among small ones (an e-mail address in
    32 px read at confidence 27 beside 8-10 px labels): kept.
    """
    confident = [w for w in words if w.conf >= min_conf]
    heights = sorted(w.box.height for w in confident)
    if not heights:
        return words
    limit = MAX_HEIGHT_RATIO * heights[len(heights) // 2]
    return [w for w in words if w.box.height <= limit or w.conf >= max(min_conf, TALL_WORD_MIN_CONF)
            or not any(w.box.intersects(c.box) for c in confident)]


def reading_box(w: OcrWord) -> Box:
    """The word's box in its own reading frame: text read on a turned crop is turned back to horizontal
    (x along the reading direction), so one line-grouping rule serves every orientation."""
    b = w.box
    if w.rotation == 90:  # read on the crop turned counter-clockwise: text ran top to bottom
        return Box(b.y0, -b.x1, b.y1, -b.x0)
    if w.rotation == 270:  # turned clockwise: text ran bottom to top
        return Box(-b.y1, b.x0, -b.y0, b.x1)
    return b


def group_lines(words: Iterable[OcrWord]) -> list[list[OcrWord]]:
    """Words in reading order, grouped into lines by geometry (PSM 11 splits lines freely).

    Words read on turned crops form lines of their own orientation.
    """
    lines: list[list[OcrWord]] = []
    for w in sorted(words, key=lambda w: (w.rotation, reading_box(w).x0, reading_box(w).y0)):
        box = reading_box(w)
        h = max(1, box.height)
        best: list[OcrWord] | None = None
        best_gap = 0
        for line in lines:  # the nearest fitting line: a tall garbage reading must not capture the word
            last = line[-1]
            if last.rotation != w.rotation:
                continue
            lb = reading_box(last)
            overlap = min(lb.y1, box.y1) - max(lb.y0, box.y0)
            gap = box.x0 - lb.x1
            limit = TURNED_LINE_GAP_HEIGHTS if w.rotation else LINE_GAP_HEIGHTS
            if overlap >= LINE_OVERLAP * min(h, max(1, lb.height)) and -h <= gap <= limit * h:
                if best is None or abs(gap) < best_gap:
                    best, best_gap = line, abs(gap)
        if best is None:
            lines.append([w])
        else:
            best.append(w)
    lines.sort(key=lambda line: (line[0].rotation, line[0].box.y0, line[0].box.x0))
    return lines


def _is_allowed(word: OcrWord, allow: frozenset[str]) -> bool:
    return normalize(word.text) in allow


def ner_token(text: str) -> str:
    """A word as the recognisers see it: OCR's stray quotes and bars at its ends dropped ('"8229025',
    '30!'), nothing for a word of punctuation alone (a "|" between "San" and "Marco" broke the name).

    A comma after a word in capitals stays: it is how a patient's family name is printed ("MOREAU,
    Rafael"), and the family-given-name recogniser needs it. Elsewhere it goes: OCR reads a title's period
    as a comma ("Prof," before a name), and the title shape has no comma.
    """
    token = text.strip(STRAY_CHARS).rstrip(".")  # "+49." but ".org" (glued to the address before it)
    if not any(c.isalnum() for c in token):
        return ""
    letters = token.replace("-", "").replace("'", "")
    if text.rstrip(STRAY_CHARS.replace(",", "")).endswith(",") and letters.isalpha() and letters.isupper() \
            and len(letters) >= 3:
        token += ","
    return token


def _overlaid(word: OcrWord, line: list[OcrWord]) -> bool:
    """True when a more confident word of the line covers much of this one: a second, garbage reading
    of the same ink ("Wal" across "Saint-Roch Clinic") that would break the string it lies in."""
    return any(o is not word and o.conf > word.conf and _covered_share(word.box, o.box) >= SHADOW_COVERED
               for o in line)


def _glued(left: OcrWord, right: OcrWord) -> bool:
    """True when two words of a line touch: one string OCR split ("347" "-41-9381", "Tou" "louse").

    A joining character at the seam ("-", "/", ".", "@") glues across a wider gap (monospace fonts).
    """
    lb, rb = reading_box(left), reading_box(right)
    gap = rb.x0 - lb.x1
    height = max(1, min(lb.height, rb.height))
    if gap < -1:
        return False  # overlapping boxes are two readings, not two halves of one string
    if left.text.rstrip()[-1:] == ":":
        return False  # a label's colon ends it ("SSN:" touching its value read as "SSN511-39-8899")
    if gap <= GLUE_GAP_HEIGHTS * height:
        return True
    if _digit_joint(left.text, right.text):
        return gap <= DIGIT_JOINER_GAP_HEIGHTS * height
    return gap <= JOINER_GAP_HEIGHTS * height and (left.text[-1:] in JOINERS or right.text[:1] in JOINERS
                                                   or right.text[:1] == ".")  # ".org", not "Dr." + "Lindqvist"


def _digit_joint(left: str, right: str) -> bool:
    """True when a joining character stands between digits at the seam ("368" "-5894", "07/" "12")."""
    if left[-1:] in JOINERS:
        return left[-2:-1].isdigit() and right[:1].isdigit()
    return left[-1:].isdigit() and right[:1] in JOINERS and right[1:2].isdigit()


def word_like(word: OcrWord) -> bool:
    """True when a confidently read word looks like writing rather than edges read as letters."""
    text = word.text.strip()
    if word.conf < NER_MIN_WORD_CONF or sum(c.isalnum() for c in text) < MIN_NER_WORD_CHARS:
        return False
    if not any(c.isalpha() for c in text) and sum(c.isdigit() for c in text) < 4:
        return False  # "400" of "W 400 L 40" is a window, not a DATE_TIME; dates have their own recogniser
    return sum(c in THIN_GLYPHS for c in text) <= MAX_THIN_SHARE * len(text)


def unit_value(text: str, allow: frozenset[str]) -> bool:
    """True when a word is a number glued to an allow-listed unit ("120kV", "250mAs", "1.25mm"): an
    acquisition value, which spaCy tags as a LOCATION once OCR has read it whole ("120kv"@82)."""
    found = _UNIT_VALUE.fullmatch(text.strip(STRAY_CHARS))
    return found is not None and normalize(found.group(1)) in allow


_UNIT_VALUE = re.compile(r"[0-9][0-9.,]*([A-Za-z]{2,4})")  # two letters at least: "4417729H" is an ID


def _ner_text(lines: list[list[OcrWord]], floor: float) -> tuple[str, list[tuple[int, int, OcrWord]]]:
    """The OCR lines as one text for the analyzer, with each word's character offsets; words read with
    less than ``floor`` confidence are left out."""
    parts: list[str] = []
    offsets: list[tuple[int, int, OcrWord]] = []
    pos = 0
    for line in lines:
        previous: OcrWord | None = None
        for w in line:
            token = ner_token(w.text)
            if w.conf < floor or not token or _overlaid(w, line):
                continue
            if previous is not None and parts and not _glued(previous, w):
                parts.append(" ")
                pos += 1
            offsets.append((pos, pos + len(token), w))
            parts.append(token)
            pos += len(token)
            previous = w
        parts.append(" " + LINE_END)
        pos += 1 + len(LINE_END)
    return "".join(parts), offsets


def _ner_hits(lines: list[list[OcrWord]], ner: NerFunction,
              policy: DetectionPolicy) -> dict[int, tuple[str, bool]]:
    """id(word) -> (entity type, found by a shape recogniser), for words any NER span touches.

    A shape span ("Dr S. Okonkwo", "ID: 00482913") takes its allow-listed words along ("Dr", "ID"):
    the value is one box, and a title or label left standing between filled words helps no one.

    A second pass reads every word, however unconfident, and keeps only shape spans: Tesseract gives
    confidence 0 to correct readings often enough ("MRN-" "34615717" at 0, an e-mail address at 21, the
    last group of a phone number at 0), and a whole address, date or number shape is not what noise on
    anatomy reads as. Statistical (spaCy) spans still need the confident first pass.
    """
    hits: dict[int, tuple[str, bool]] = {}
    text, offsets = _ner_text(lines, policy.min_conf)
    _add_hits(hits, text, offsets, ner, policy, shapes_only=False)
    every_text, every_offsets = _ner_text(lines, 0.0)
    if every_text != text:
        # an analyzer that can run its shape recognisers alone (ner.PresidioNer.shapes) skips spaCy's spans
        _add_hits(hits, every_text, every_offsets, getattr(ner, "shapes", ner), policy, shapes_only=True)
    return hits


#: a span read wholly below the confidence floor counts only with this many digits (or an "@"): a date, an
#: ID, a number, an address are shapes noise does not form; a title before a capitalised word is
MIN_UNCONFIDENT_DIGITS = 4


#: ... or comes from one of these recognisers and has this many letters: an institution needs a kind word
#: ("Clinic", "Hospital"), a city a name from a closed list; noise on anatomy reads neither (a 32 px "Lyon"
#: came back at confidence 24, beside an opening quote)
UNCONFIDENT_NAMED = frozenset({"institution", "city"})
MIN_UNCONFIDENT_LETTERS = 4


def _hard_shape(text: str, recognizer: str = "") -> bool:
    if recognizer in UNCONFIDENT_NAMED and sum(c.isalpha() for c in text) >= MIN_UNCONFIDENT_LETTERS:
        return True
    return "@" in text or sum(c.isdigit() for c in text) >= MIN_UNCONFIDENT_DIGITS


def _add_hits(hits: dict[int, tuple[str, bool]], text: str, offsets: list[tuple[int, int, OcrWord]],
              ner: NerFunction, policy: DetectionPolicy, shapes_only: bool) -> None:
    if not text.strip():
        return
    for span in ner(text):
        if span.score < policy.min_score:
            continue
        trusted = span.recognizer in STRUCTURAL
        if shapes_only and not trusted:
            continue
        touched = [w for start, end, w in offsets if start < span.end and span.start < end]
        if shapes_only and all(w.conf < policy.min_conf for w in touched) \
                and not _hard_shape(text[span.start:span.end], span.recognizer):
            continue  # letters alone, all unconfident: a photograph's foliage read "ms EF", a title and a name
        if not trusted and (not touched or sum(w.conf for w in touched) / len(touched) < NER_MIN_WORD_CONF):
            continue  # a statistical span over a run of unconfident readings ("Ss ai jx" on foliage)
        for start, end, w in offsets:
            if start < span.end and span.start < end and (trusted or (word_like(w)
                                                                    and not unit_value(w.text, policy.allow_words))):
                if id(w) not in hits or (trusted and not hits[id(w)][1]):
                    hits[id(w)] = (span.entity, trusted)


def _joined_match(deny: DenyList, texts: list[str]) -> str | None:
    """The group a run of words matches as one header value, when every word of the run is needed.

    Tolerance lets a neighbour ride along: "Linda Johnson." plus an unrelated
    garbage reading "OE" still lies within two edits of LINDAJOHNSON, and the
    garbage box (which spanned a label line) was filled too. A run whose first
    or last word can be dropped without a worse match is not a match; the
    shorter run is tried on its own anyway. Punctuation-only words stay: they
    add no letters, and they are often a split piece of the value's box.
    """
    found = deny.joined_distance(texts)
    if found is None:
        return None
    for dropped, shorter in ((texts[0], texts[1:]), (texts[-1], texts[:-1])):
        if not normalize(dropped):
            continue  # punctuation ("/", a plate edge read as "|") belongs to the value's rendering
        sub = deny.joined_distance(shorter)
        if sub is not None and sub[1] <= found[1]:
            return None
    return found[0]


def _titles_follow_names(lines: list[list[OcrWord]], reasons: dict[int, tuple[str, str]]) -> None:
    """Titles, degrees and initials ("Dr. med. I." before "Duarte"; "Dr" is allow-listed as the modality
    DR) go with the person name right after them."""
    for line in lines:
        for i in range(len(line) - 1, 0, -1):
            name = line[i]
            if reasons.get(id(name), ("", ""))[1] not in ("PERSON", "person-name"):
                continue
            j = i - 1
            while j >= 0 and id(line[j]) not in reasons and _name_prefix(line[j]):
                reasons[id(line[j])] = reasons[id(name)]
                j -= 1


def _name_prefix(word: OcrWord) -> bool:
    key = normalize(word.text)
    return key in TITLES or key in NAME_DEGREES or (len(key) == 1 and key.isalpha())


def _value_label(word: OcrWord) -> bool:
    """A confidently read PHI label; one of two letters ("ID", "Ph") only with its colon or hash,
    as noise on a photograph reads "De" and "ms" but rarely "ID:"."""
    key = normalize(word.text)
    if key not in VALUE_LABELS or word.conf < NER_MIN_WORD_CONF:
        return False
    return len(key) >= 3 or word.text.rstrip()[-1:] in (":", "#")


def _labelled_values(lines: list[list[OcrWord]], reasons: dict[int, tuple[str, str]],
                     policy: DetectionPolicy) -> None:
    """The words after a PHI label on its line ("SSN:", "MRN", "DOB", "Acc#") are its value, whatever OCR
    made of them: a misread "442-320-2834" at confidence 0 is still the number the label announces."""
    for line in lines:
        for i, w in enumerate(line):
            if not _value_label(w):
                continue
            for value in line[i + 1:i + 1 + MAX_LABELLED_WORDS]:
                if normalize(value.text) in VALUE_LABELS or _is_allowed(value, policy.allow_words):
                    break
                reasons.setdefault(id(value), (SOURCE_NER, LABELLED_VALUE))


def _is_fragment(word: OcrWord, policy: DetectionPolicy) -> bool:
    """Not a kept word (allow-listed, or a label such as "SSN:") and unconfident or a few characters."""
    if _is_allowed(word, policy.allow_words) or normalize(word.text) in VALUE_LABELS:
        return False
    return word.conf < NER_MIN_WORD_CONF or sum(c.isalnum() for c in word.text) <= FRAGMENT_CHARS


def _piece_of(fragment: OcrWord, value: OcrWord) -> bool:
    """True when ``fragment`` sits right beside ``value`` and has the size of its glyphs: a wide or tall
    garbage reading of a plate ("OE" over 105 px beside "Johnson.") is no piece of it."""
    fb, vb = reading_box(fragment), reading_box(value)
    gap = fb.x0 - vb.x1 if fb.x0 >= vb.x0 else vb.x0 - fb.x1
    per_char = vb.width / max(1, len(value.text))
    return gap <= FRAGMENT_GAP_HEIGHTS * max(1, min(fb.height, vb.height)) and \
        fb.height <= FRAGMENT_SIZE_RATIO * vb.height and \
        fb.width <= FRAGMENT_SIZE_RATIO * per_char * max(1, len(fragment.text))


def _fragments_follow_values(lines: list[list[OcrWord]], reasons: dict[int, tuple[str, str]],
                             policy: DetectionPolicy) -> None:
    """Fragments and unconfident readings right beside a redacted word of their line go with it, both
    ways, until none is left: OCR breaks small text into a confident piece the recognisers find and
    pieces they cannot ("N" "1981" of 9 May 1981, "Prat." "L." "Sorensen")."""
    for line in lines:
        changed = True
        while changed:
            changed = False
            for i, w in enumerate(line):
                if id(w) in reasons or not _is_fragment(w, policy):
                    continue
                for j in (i - 1, i + 1):
                    if 0 <= j < len(line) and id(line[j]) in reasons and _piece_of(w, line[j]):
                        reasons[id(w)] = reasons[id(line[j])]
                        changed = True
                        break


def _bridge(a: Box, b: Box) -> Box:
    """The gap between two boxes side by side (or one above the other, on turned lines), or ``b`` itself."""
    y0, y1 = max(a.y0, b.y0), min(a.y1, b.y1)
    x0, x1 = max(a.x0, b.x0), min(a.x1, b.x1)
    if y1 > y0 and a.x1 <= b.x0:
        return Box(a.x1, y0, b.x0, y1)
    if y1 > y0 and b.x1 <= a.x0:
        return Box(b.x1, y0, a.x0, y1)
    if x1 > x0 and a.y1 <= b.y0:
        return Box(x0, a.y1, x1, b.y0)
    if x1 > x0 and b.y1 <= a.y0:
        return Box(x0, b.y1, x1, a.y0)
    return b


def find_redactions(words: Iterable[OcrWord], ner: NerFunction, deny: DenyList, policy: DetectionPolicy,
                    rows: int, cols: int) -> list[Redaction]:
    """Padded boxes to fill in a frame of ``rows`` x ``cols``, each with its reason.

    Order of precedence per word: a header match always redacts (even an
    allow-listed word: "L" is kept, but not if it is the patient's ID);
    otherwise allow-listed words are kept; otherwise NER entities, or every
    confident word in all-text mode, are redacted. Adjacent words of one line
    with the same reason become one box so the gap between them goes too.
    """
    views = weaker_views_dropped(list(words), policy.min_conf)
    lines = group_lines(dedupe(drop_implausible(views, policy.min_conf), policy.min_conf))
    ner_hits = _ner_hits(lines, ner, policy) if not policy.all_text else {}
    reasons: dict[int, tuple[str, str]] = {}
    for line in lines:
        for i, w in enumerate(line):
            group = deny.match(w.text) if deny else None
            if group:
                reasons[id(w)] = (SOURCE_HEADER, group)
        if deny:
            for size in range(2, MAX_JOINED_WORDS + 1):
                for i in range(len(line) - size + 1):
                    window = line[i:i + size]
                    group = _joined_match(deny, [w.text for w in window])
                    if group:
                        for w in window:
                            reasons.setdefault(id(w), (SOURCE_HEADER, group))
        for w in line:
            structural = id(w) in ner_hits and ner_hits[id(w)][1]
            if id(w) in reasons or (_is_allowed(w, policy.allow_words) and not structural):
                continue
            if policy.all_text and w.conf >= policy.min_conf:
                reasons[id(w)] = (SOURCE_ALL_TEXT, "text")
            elif id(w) in ner_hits:
                reasons[id(w)] = (SOURCE_NER, ner_hits[id(w)][0])
    _titles_follow_names(lines, reasons)
    _labelled_values(lines, reasons, policy)
    if not policy.all_text:
        _fragments_follow_values(lines, reasons, policy)
    redacted_boxes = [w.box for line in lines for w in line if id(w) in reasons]
    kept = [w for line in lines for w in line if id(w) not in reasons and w.conf >= policy.min_conf
            and not any(w.box.intersects(b) for b in redacted_boxes)]
    out: list[Redaction] = []
    for line in lines:
        start = len(out)
        current: Redaction | None = None
        run: list[Redaction] = []  # redactions of this line that touch one another
        redacted = [w.box for w in line if id(w) in reasons]
        for w in line:
            why = reasons.get(id(w))
            if why is None and (w.conf < policy.min_conf or any(w.box.intersects(b) for b in redacted)):
                continue  # a garbage or other-polarity reading between redacted words: not a kept word
            if why is None:
                if current:
                    run.append(current)
                out.extend(_one_band(run, line[0].rotation))
                current, run = None, []
                continue
            if current and (current.source, current.label) == why:
                current = Redaction(current.box.union(w.box), *why)
            else:
                box = w.box
                if current:  # a redacted neighbour for another reason: the gap between them goes too
                    run.append(current)
                    box = box.union(_bridge(current.box, w.box))
                current = Redaction(box, *why)
        if current:
            run.append(current)
        out.extend(_one_band(run, line[0].rotation))
        out[start:] = [_over_unread_ink(r, line, reasons, kept, policy.padding) for r in out[start:]]
    return [Redaction(r.box.padded(policy.padding, rows, cols), r.source, r.label) for r in out]


def _to_reading(box: Box, rotation: int) -> Box:
    """A frame box in the reading frame of a line turned by ``rotation`` (as :func:`reading_box`)."""
    if rotation == 90:
        return Box(box.y0, -box.x1, box.y1, -box.x0)
    if rotation == 270:
        return Box(-box.y1, box.x0, -box.y0, box.x1)
    return box


def _from_reading(box: Box, rotation: int) -> Box:
    """The inverse of :func:`_to_reading`."""
    if rotation == 90:
        return Box(-box.y1, box.x0, -box.y0, box.x1)
    if rotation == 270:
        return Box(box.y0, -box.x1, box.y1, -box.x0)
    return box


def _over_unread_ink(red: Redaction, line: list[OcrWord], reasons: dict[int, tuple[str, str]],
                     kept: list[OcrWord], padding: int) -> Redaction:
    """A redaction grown along its line over the rest of the text region its words were read in, up to the
    nearest word that is kept.

    Tesseract reads a small or textured line in pieces and returns nothing for the glyphs between or beside
    them ("Dott." before "Irina Okonkwo", "888" after "A2015-19", "+49" before "30 3800708"): the region
    holds their ink, clustered with the value's at word spacing, and the value's box stopped where the
    reading did; the box takes the region's band too (descenders of the glyphs it missed). Only a region
    one line high counts (a region merged with anatomy or with other lines says
    nothing about where the value ends), and a word read and kept on the line (a label, a marker, another
    item) ends the growth, its padding short of it.
    """
    rotation = line[0].rotation
    own = [w for w in line if id(w) in reasons and w.region is not None and w.box.intersects(red.box)]
    if not own:
        return red
    box = _to_reading(red.box, rotation)
    height = max(1, max(reading_box(w).height for w in own))
    lo, hi, top, bottom = box.x0, box.x1, box.y0, box.y1
    for w in own:
        region = _to_reading(w.region, rotation)
        if region.height <= max(UNREAD_INK_REGION_HEIGHTS * height, ONE_LINE_PX):
            lo, hi = min(lo, region.x0), max(hi, region.x1)
            top, bottom = min(top, region.y0), max(bottom, region.y1)
    if (lo, hi, top, bottom) == (box.x0, box.x1, box.y0, box.y1):
        return red
    regions = {w.region for w in own}
    for k in kept:
        if k.region in regions and sum(c.isalnum() for c in k.text) == 1:
            continue  # one glyph read alone inside the value's own line ("R" of "MRN-828434"), no marker
        kb = reading_box(k) if k.rotation == rotation else _to_reading(k.box, rotation)
        if min(kb.y1, box.y1) - max(kb.y0, box.y0) < LINE_OVERLAP * min(max(1, kb.height), box.height):
            continue
        if kb.x1 <= box.x0:
            lo = max(lo, kb.x1 + padding + 1)
        elif kb.x0 >= box.x1:
            hi = min(hi, kb.x0 - padding - 1)
    grown = Box(min(lo, box.x0), top, max(hi, box.x1), bottom)
    return Redaction(_from_reading(grown, rotation), red.source, red.label)


def _one_band(run: list[Redaction], rotation: int) -> list[Redaction]:
    """Touching redactions of one line (redacted for different reasons: "Dr. med." as a title, "Ingrid
    Brandt" as a name) share the line's band, so the string's ascenders and descenders under the shorter
    words' boxes go too."""
    if len(run) < 2:
        return run
    if rotation:
        x0, x1 = min(r.box.x0 for r in run), max(r.box.x1 for r in run)
        return [Redaction(Box(x0, r.box.y0, x1, r.box.y1), r.source, r.label) for r in run]
    y0, y1 = min(r.box.y0 for r in run), max(r.box.y1 for r in run)
    return [Redaction(Box(r.box.x0, y0, r.box.x1, y1), r.source, r.label) for r in run]
