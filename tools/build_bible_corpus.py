"""Build the English-Spanish verse-aligned Bible corpus shipped with the package.

The corpus pairs the World English Bible (module ``engWEB2015eb``, Debian
package ``sword-text-web``) with the Reina-Valera 1909 (module ``spaRV1909eb``,
Debian package ``sword-text-sparv``).  Both texts are in the public domain.

Pipeline
--------
1. Dump each SWORD module to text with ``mod2imp`` (Debian package
   ``libsword-utils``), or read dumps made earlier (``--english-imp`` and
   ``--spanish-imp``).  A dump is a sequence of entries: a ``$$$Book C:V``
   header line followed by the verse text in OSIS markup.
2. Parse the entries into ``{reference: text}``.  Module and testament
   headings, verse-0 entries (book and chapter introductions) and verses that
   are empty once cleaned are skipped and counted.  References are normalised
   to ``Book C:V`` with Arabic book numbers (``II Kings 2:1`` -> ``2 Kings 2:1``,
   ``Revelation of John 1:1`` -> ``Revelation 1:1``).
3. Strip the OSIS markup (see :func:`clean_osis`): footnotes, cross references,
   section headings and speaker labels are removed with their contents; the
   text inside other elements (words with Strong's numbers, quotations,
   translator additions, canonical psalm titles, ...) is kept; line, paragraph
   and chapter markers become spaces; entities are unescaped; whitespace and
   the spacing around punctuation are normalised; the result is Unicode NFC.
   The Reina-Valera prints the first word of every chapter in capitals
   (``EN el principio``); :func:`normalise_chapter_capitals` restores the usual
   casing.
4. Join the two texts on the reference: only references present and non-empty
   on both sides are kept.  The two modules use different versification
   schemes (NRSVA with deuterocanon for the WEB, KJV for the RV 1909); the join
   is verse by verse on the same reference, and the references found on one
   side only are counted.  Pairs whose texts do not translate each other,
   because one module moved or merged verses, are then dropped
   (:func:`find_misaligned`, :func:`length_outliers`; ``--keep-misaligned``
   keeps them).
5. Assign a fixed split from a stable hash of the reference:
   ``zlib.crc32(reference.encode("utf-8")) % 100`` below 4 is ``test``, 4 to 6
   is ``dev``, the rest is ``train``.  Then no text may occur in two splits: a
   pair whose English or Spanish text (lowercased, whitespace collapsed) also
   occurs in ``test`` is removed from ``train`` and ``dev``, and a pair whose
   text occurs in ``dev`` is removed from ``train``.
6. Write a gzip-compressed, UTF-8 TSV with the header
   ``reference\\tsplit\\tenglish\\tspanish``, one pair per line, in canonical
   book order.  The gzip header carries no file name and ``mtime=0``, so the
   same input always gives the same bytes.

Usage::

    python -m tools.build_bible_corpus \\
        --output training/translation/data/bible.en-es.tsv.gz

Only the Python standard library is used.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import html
import io
import re
import subprocess
import sys
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

DEFAULT_ENGLISH_MODULE = "engWEB2015eb"
DEFAULT_SPANISH_MODULE = "spaRV1909eb"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "data" / "bible.en-es.tsv.gz"

HEADER = ("reference", "split", "english", "spanish")
SPLITS = ("train", "dev", "test")

SortKey = Tuple[int, int, int, str]
Pair = Tuple[str, str, str]          # reference, english, spanish
Row = Tuple[str, str, str, str]      # reference, split, english, spanish

#: ``zlib.crc32(reference) % 100`` below this is ``test`` (about 4 %).
TEST_BUCKETS = 4
#: The next buckets (4, 5 and 6: about 3 %) are ``dev``.
DEV_BUCKETS = 3

#: The 66 books of the Protestant canon in the usual order; other books (the
#: deuterocanon of the WEB) sort after them, in the order they are met.
BOOK_ORDER: Tuple[str, ...] = (
    "Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua",
    "Judges", "Ruth", "1 Samuel", "2 Samuel", "1 Kings", "2 Kings",
    "1 Chronicles", "2 Chronicles", "Ezra", "Nehemiah", "Esther", "Job",
    "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon", "Isaiah",
    "Jeremiah", "Lamentations", "Ezekiel", "Daniel", "Hosea", "Joel", "Amos",
    "Obadiah", "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai",
    "Zechariah", "Malachi",
    "Matthew", "Mark", "Luke", "John", "Acts", "Romans", "1 Corinthians",
    "2 Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians",
    "1 Thessalonians", "2 Thessalonians", "1 Timothy", "2 Timothy", "Titus",
    "Philemon", "Hebrews", "James", "1 Peter", "2 Peter", "1 John", "2 John",
    "3 John", "Jude", "Revelation",
)

_BOOK_RANK = {book: rank for rank, book in enumerate(BOOK_ORDER)}
_BOOK_RENAMES = {"Revelation of John": "Revelation"}
_ROMAN_PREFIX = re.compile(r"^(I|II|III|IV) (?=\S)")
_ROMAN_VALUES = {"I": "1", "II": "2", "III": "3", "IV": "4"}
_REFERENCE = re.compile(r"^(?P<book>.+?) (?P<chapter>\d+):(?P<verse>\d+)$")

# --- markup -----------------------------------------------------------------

#: Elements removed together with everything inside them.
DROP_ELEMENTS = frozenset({"note", "speaker"})
#: Elements that end a line, paragraph, list item, ...: they become a space.
BREAK_ELEMENTS = frozenset({
    "l", "lg", "lb", "div", "p", "chapter", "verse", "milestone", "list",
    "item", "table", "row", "cell", "head", "closer", "salute", "signed",
})
#: Inline elements whose text is kept and whose tags never separate words.
GLUE_ELEMENTS = frozenset({
    "w", "hi", "divineName", "seg", "name", "foreign", "catchWord", "rdg",
    "reference", "abbr", "index", "figure", "inscription", "mentioned",
    "rf", "fi",
})

# Sentinels placed where a tag was, resolved by :func:`_resolve_boundaries`.
_SOFT = "\x01"          # space only between two words (removed note, </q>...)
_ADDED_START = "\x02"   # start of <transChange>: maybe an enclitic pronoun
_ADDED_END = "\x03"     # end of <transChange>
_SENTINELS = _SOFT + _ADDED_START + _ADDED_END

_TOKEN = re.compile(r"<[^>]*>|<[^>]*$|[^<]+")
_TAG = re.compile(
    r"<\s*(?P<end>/)?\s*(?P<name>[A-Za-z][\w:.-]*)(?P<attrs>[^>]*?)(?P<empty>/)?\s*>?$", re.S)
_BOOK_END = re.compile(r'<div\b[^>]*\beID="[^"]*"[^>]*\btype="book"[^>]*/>')
_SENTINEL_RUN = re.compile("[" + _SENTINELS + "]+")
_WORD_BEFORE = re.compile(r"(\w+)$")
_WORD_AFTER = re.compile(r"\w+")
_WORDS = re.compile(r"\w+")

# A space is put where a removed element stood only between a character that
# can end a word and one that can start the next.
_ENDS_WORD = set(",.;:!?)]}”’»") | {"—"}
_STARTS_WORD = set("“‘([{¿¡«")

_NO_SPACE_BEFORE = ",.;:!?)]}»”"
_NO_SPACE_AFTER = "([{¿¡«“"

#: Spanish object pronouns that the Reina-Valera marks as added and attaches
#: to the verb before them (``tráeme<transChange>lo</transChange>``).
ENCLITICS = frozenset({
    "lo", "la", "los", "las", "le", "les", "me", "te", "se", "nos", "os",
    "selo", "sela", "selos", "selas", "melo", "mela", "telo", "tela",
})
#: Words after which a pronoun is proclitic (``no<transChange>lo</transChange>hizo``).
_NOT_VERBS = frozenset({
    "y", "e", "o", "ó", "u", "ni", "que", "qué", "no", "si", "sí", "como",
    "cómo", "cuando", "cuándo", "cuanto", "cuánto", "ya", "pues", "mas", "más",
    "pero", "aun", "aún", "porque", "donde", "dónde", "quien", "quién", "a",
    "á", "de", "en", "por", "para", "con", "sin", "el", "la", "los", "las",
    "lo", "le", "les", "se", "me", "te", "nos", "os", "yo", "tú", "él", "ella",
    "ellos", "ellas", "nosotros", "vosotros", "también", "tampoco", "así",
    "entonces", "luego", "cual", "cuales",
})


@dataclass
class ParseStats:
    """Counts of what :func:`parse_imp` read and skipped for one module."""

    entries: int = 0
    verses: int = 0
    skipped_headings: int = 0
    skipped_verse_zero: int = 0
    skipped_empty: int = 0
    duplicate_references: int = 0
    recased_words: int = 0
    unknown_headers: List[str] = field(default_factory=list)

    def lines(self, name: str) -> List[str]:
        """Return a human readable summary, one line per count."""
        out = [
            f"{name}: {self.entries} entries read, {self.verses} verses kept",
            f"{name}:   skipped {self.skipped_headings} module/testament headings",
            f"{name}:   skipped {self.skipped_verse_zero} verse-0 entries "
            "(book/chapter introductions and headings)",
            f"{name}:   skipped {self.skipped_empty} verses empty after cleaning",
            f"{name}:   recased {self.recased_words} chapter-initial capitalised words",
        ]
        if self.duplicate_references:
            out.append(f"{name}:   {self.duplicate_references} repeated references (joined)")
        if self.unknown_headers:
            out.append(f"{name}:   {len(self.unknown_headers)} unrecognised headers, e.g. "
                       f"{self.unknown_headers[:3]}")
        return out


@dataclass
class AlignStats:
    """Counts from :func:`align`."""

    pairs: int = 0
    english_only: int = 0
    spanish_only: int = 0
    english_only_examples: List[str] = field(default_factory=list)
    spanish_only_examples: List[str] = field(default_factory=list)

    def lines(self) -> List[str]:
        """Return a human readable summary, one line per count."""
        return [
            f"aligned: {self.pairs} references present and non-empty on both sides",
            f"aligned:   {self.english_only} references only in English, e.g. "
            f"{self.english_only_examples[:5]}",
            f"aligned:   {self.spanish_only} references only in Spanish, e.g. "
            f"{self.spanish_only_examples[:5]}",
        ]


@dataclass
class SplitStats:
    """Counts from :func:`assign_splits`."""

    before: Dict[str, int] = field(default_factory=dict)
    removed: Dict[str, int] = field(default_factory=dict)
    after: Dict[str, int] = field(default_factory=dict)

    def lines(self) -> List[str]:
        """Return a human readable summary, one line per split."""
        return [
            f"split {name}: {self.before.get(name, 0)} by hash, "
            f"{self.removed.get(name, 0)} removed as duplicates of a held-out text, "
            f"{self.after.get(name, 0)} kept"
            for name in SPLITS
        ]


# --- references -------------------------------------------------------------


def normalise_book(book: str) -> str:
    """Return the book name used in references.

    SWORD writes ``I Samuel``, ``II Kings``, ``III John`` and
    ``Revelation of John``; these become ``1 Samuel``, ``2 Kings``, ``3 John``
    and ``Revelation``.  Other names are returned unchanged.
    """
    book = " ".join(book.split())
    book = _BOOK_RENAMES.get(book, book)
    match = _ROMAN_PREFIX.match(book)
    if match:
        book = _ROMAN_VALUES[match.group(1)] + book[match.end() - 1:]
    return book


def parse_reference(header: str) -> Optional[Tuple[str, int, int]]:
    """Split a ``$$$`` header (without the ``$$$``) into ``(book, chapter, verse)``.

    Returns ``None`` for headers that are not verse references, such as
    ``[ Module Heading ]`` and ``[ Testament 1 Heading ]``.  The book name is
    normalised with :func:`normalise_book`.
    """
    match = _REFERENCE.match(header.strip())
    if not match:
        return None
    return (normalise_book(match.group("book")), int(match.group("chapter")),
            int(match.group("verse")))


def format_reference(book: str, chapter: int, verse: int) -> str:
    """Return the reference string ``Book C:V``."""
    return f"{book} {chapter}:{verse}"


def reference_sort_key(reference: str, extra_books: Optional[Mapping[str, int]] = None) -> SortKey:
    """Return a key that sorts references in canonical book order.

    Books of :data:`BOOK_ORDER` come first in that order; other books follow,
    ordered by ``extra_books`` (name -> rank) when given, then by name.
    """
    parsed = parse_reference(reference)
    if parsed is None:
        return (10_000, 0, 0, reference)
    book, chapter, verse = parsed
    if book in _BOOK_RANK:
        rank = _BOOK_RANK[book]
    else:
        rank = len(BOOK_ORDER) + (extra_books or {}).get(book, 5_000)
    return (rank, chapter, verse, book)


# --- reading dumps ----------------------------------------------------------


def run_mod2imp(module: str, executable: str = "mod2imp") -> str:
    """Run ``mod2imp MODULE`` and return its standard output as text.

    Raises ``RuntimeError`` with a hint when the program is missing or fails.
    """
    try:
        result = subprocess.run([executable, module], check=False, capture_output=True)
    except FileNotFoundError as error:
        raise RuntimeError(
            f"{executable} not found: install it with "
            "'apt-get install libsword-utils sword-text-web sword-text-sparv', "
            "or pass --english-imp/--spanish-imp") from error
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"{executable} {module} failed (exit {result.returncode}): "
                           f"{result.stderr.decode('utf-8', 'replace').strip()}")
    return result.stdout.decode("utf-8")


def iter_imp_entries(text: str) -> Iterator[Tuple[str, str]]:
    """Yield ``(header, body)`` for each entry of a ``mod2imp`` dump.

    ``header`` is the line after ``$$$``; ``body`` is everything up to the
    next header (lines joined with a newline, without the final newline).
    Text before the first header is ignored.
    """
    header: Optional[str] = None
    body: List[str] = []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if line.startswith("$$$"):
            if header is not None:
                yield header, "\n".join(body)
            header, body = line[3:], []
        elif header is not None:
            body.append(line)
    if header is not None:
        while body and not body[-1]:
            body.pop()
        yield header, "\n".join(body)


# --- cleaning ---------------------------------------------------------------


def _tag_parts(tag: str) -> Tuple[str, bool, bool, str]:
    """Return ``(name, is_end, is_empty, attributes)`` of a tag's source text."""
    match = _TAG.match(tag)
    if not match:
        return ("", False, True, "")
    return (match.group("name"), bool(match.group("end")), bool(match.group("empty")),
            match.group("attrs") or "")


def _markup_to_text(osis: str) -> str:
    """Replace the markup of one verse by text, spaces and sentinels.

    Dropped elements and most other tags leave :data:`_SOFT`; ``transChange``
    tags leave :data:`_ADDED_START`/:data:`_ADDED_END`; break elements leave a
    space; glue elements leave nothing.  Entities are not yet unescaped.
    """
    book_end = _BOOK_END.search(osis)
    if book_end:  # material after the end of a book (e.g. a glossary) is not verse text
        osis = osis[:book_end.start()]
    out: List[str] = []
    dropping: List[str] = []  # names of the open dropped elements
    for token in _TOKEN.findall(osis):
        if not token.startswith("<"):
            if not dropping:
                out.append(token)
            continue
        name, is_end, is_empty, attrs = _tag_parts(token)
        if not token.endswith(">"):  # truncated tag at the end of the entry
            continue
        drops = name in DROP_ELEMENTS or (
            name == "title" and 'canonical="true"' not in attrs)
        if dropping:
            if drops and not is_empty:
                if is_end and dropping[-1] == name:
                    dropping.pop()
                elif not is_end:
                    dropping.append(name)
            if not dropping:
                out.append(_SOFT)
            continue
        if drops:
            if not is_empty and not is_end:
                dropping.append(name)
            else:
                out.append(_SOFT)
            continue
        if name == "transChange":
            out.append(_ADDED_END if is_end else _ADDED_START)
        elif name in BREAK_ELEMENTS:
            out.append(" ")
        elif name in GLUE_ELEMENTS:
            pass
        elif is_empty:
            out.append(" ")
        else:
            out.append(_SOFT)
    return "".join(out)


def _is_enclitic_join(left: str, right: str, vocabulary: Optional[Mapping[str, int]]) -> bool:
    """Whether the added word ``right`` is a pronoun attached to the verb ``left``.

    ``right`` (the first added word) must be an object pronoun
    (:data:`ENCLITICS`) and ``left`` not a function word (:data:`_NOT_VERBS`).
    Then the two are joined when the
    joined form occurs elsewhere in the module (``vocabulary``), when ``left``
    carries a written accent but is rare on its own (the Reina-Valera accents
    verbs that take an enclitic: ``díjo``-``le``, ``oyéndo``-``lo``), or when
    ``left`` starts with a small letter and ends in ``r`` or ``d`` (infinitives
    and imperatives: ``sacar``-``la``, ``haced``-``lo``).
    """
    lower = left.lower()
    if right.lower() not in ENCLITICS or lower in _NOT_VERBS:
        return False
    vocabulary = vocabulary or {}
    if vocabulary.get(lower + right.lower(), 0) > 0:
        return True
    if re.search("[áéíóú]", lower) and vocabulary.get(lower, 0) <= 2:
        return True
    return left[0].islower() and lower.endswith(("r", "d"))


def _resolve_boundaries(text: str, vocabulary: Optional[Mapping[str, int]]) -> str:
    """Turn the sentinels left by :func:`_markup_to_text` into a space or nothing."""

    def replace(match: "re.Match[str]") -> str:
        run = match.group(0)
        before = text[match.start() - 1] if match.start() > 0 else ""
        after = text[match.end()] if match.end() < len(text) else ""
        if not before or not after or before.isspace() or after.isspace():
            return ""
        if before.isalnum() and after.isalnum():
            if _SOFT not in run and run.endswith(_ADDED_START):
                left = _WORD_BEFORE.search(text, 0, match.start())
                right = _WORD_AFTER.match(text, match.end())
                if left and right and _is_enclitic_join(left.group(1), right.group(0), vocabulary):
                    return ""
            return " "
        if ((before.isalnum() or before in _ENDS_WORD)
                and (after.isalnum() or after in _STARTS_WORD)):
            return " "
        return ""

    return _SENTINEL_RUN.sub(replace, text)


def _normalise_spacing(text: str) -> str:
    """Collapse whitespace and remove spaces before closing / after opening punctuation."""
    text = " ".join(text.split())
    text = re.sub(r" +(?=[" + re.escape(_NO_SPACE_BEFORE) + "])", "", text)
    text = re.sub(r"(?<=[" + re.escape(_NO_SPACE_AFTER) + "]) +", "", text)
    return text.strip()


def clean_osis(osis: str, vocabulary: Optional[Mapping[str, int]] = None) -> str:
    """Return the plain text of one verse of OSIS markup.

    * ``<note>`` (footnotes, cross references), ``<speaker>`` and non-canonical
      ``<title>`` elements are removed with their contents; canonical titles
      (psalm superscriptions, which the Reina-Valera prints inside verse 1)
      are kept.
    * Everything after the end-of-book marker is removed (the WEB appends its
      glossary to Revelation 22:21).
    * The text of other elements is kept.  Line, line-group, paragraph,
      chapter and milestone tags (and other empty tags) become spaces.
    * Where a removed element or a ``<q>`` tag stood directly between two
      words, a space is put (``God<note>..</note>created`` -> ``God created``).
    * ``<transChange>`` (words added by the translators) joins an added
      pronoun to the verb before it (``tráeme<transChange>lo</transChange>`` ->
      ``tráemelo``, see :func:`_is_enclitic_join`, which uses ``vocabulary``,
      lowercased word -> count, when given) and otherwise separates glued
      words (``allí<transChange>también</transChange>bdelio`` -> ``allí
      también bdelio``).
    * HTML entities are unescaped, whitespace collapsed, no space is left
      before ``, . ; : ! ? ) ] } » ”`` nor after ``( [ { ¿ ¡ « “``, and the text
      is normalised to Unicode NFC.
    """
    text = _markup_to_text(osis)
    text = html.unescape(text)
    text = text.replace("\u00a0", " ")
    text = _resolve_boundaries(text, vocabulary)
    text = _normalise_spacing(text)
    return unicodedata.normalize("NFC", text)


def build_vocabulary(bodies: Iterable[str]) -> Dict[str, int]:
    """Count the lowercased words of verse bodies, without joining across tags.

    Used by :func:`clean_osis` to decide whether two pieces of text that a
    ``transChange`` tag separates form one word.
    """
    counts: Dict[str, int] = collections.Counter()
    for body in bodies:
        plain = _markup_to_text(body).replace(_ADDED_START, " ").replace(_ADDED_END, " ")
        plain = html.unescape(plain.replace(_SOFT, " "))
        counts.update(word.lower() for word in _WORDS.findall(unicodedata.normalize("NFC", plain)))
    return dict(counts)


def _is_all_caps(word: str) -> bool:
    return len(word) >= 2 and word.isupper() and word.isalpha()


_CAPS_WORD = re.compile(r"\b[^\W\d_]{2,}\b")


def normalise_chapter_capitals(verses: Dict[str, str]) -> int:
    """Undo the capitals of the first word(s) of chapters, in place; return the count.

    The Reina-Valera 1909 prints the first word of each chapter in capitals
    (``EN el principio``, ``Y ACONTECIÓ``, ``DE SIETE años``, ``Salmo de
    David. TEN piedad``).  In the first verse of a chapter, the first
    all-capital word of two letters or more is recased when it starts a
    sentence (nothing, ``. : ; ! ?`` or an opening mark before it, or a
    one-letter word such as ``Y`` at the start of a sentence), and so is each
    all-capital word that directly follows a recased one.  A word gets its
    most frequent form that is not all capitals (``JEHOVÁ`` -> ``Jehová``,
    ``FUERON`` -> ``fueron``), with a capital initial at the start of a
    sentence.  Words that are more often written in capitals than not in
    the rest of the text (``JAH``) are left alone.
    """
    caps_elsewhere: Dict[str, int] = collections.Counter()
    forms: Dict[str, Dict[str, int]] = collections.defaultdict(collections.Counter)
    for reference, text in verses.items():
        first_verse = reference.endswith(":1")
        for word in _WORDS.findall(text):
            if _is_all_caps(word):
                if not first_verse:
                    caps_elsewhere[word] += 1
            elif not word.isdigit():
                forms[word.lower()][word] += 1

    def starts_sentence(before: str) -> bool:
        before = before.rstrip(" ¡¿(«“‘\"'")
        return not before or before[-1] in ".:;!?"

    def recased(word: str, sentence_start: bool) -> Optional[str]:
        candidates = forms.get(word.lower(), {})
        if caps_elsewhere.get(word, 0) >= max(3, sum(candidates.values())):
            return None
        if candidates:
            form = max(sorted(candidates), key=lambda f: candidates[f])
        else:
            form = word.lower()
        if sentence_start or not candidates:
            form = form[0].upper() + form[1:]
        return form

    changed = 0
    for reference in list(verses):
        if not reference.endswith(":1"):
            continue
        text = verses[reference]
        words = [m for m in _CAPS_WORD.finditer(text) if _is_all_caps(m.group(0))]
        if not words:
            continue
        first = words[0]
        before = text[:first.start()]
        # one-letter words (``Y``, ``Y Á``) may come before the capitalised word
        lead = re.fullmatch(r"(.*?)((?:\b[^\W\d_]\s+)+)", before, re.S)
        if not (starts_sentence(before) or (lead and starts_sentence(lead.group(1)))):
            continue
        if lead and not starts_sentence(before):
            letters = list(re.finditer(r"[^\W\d_]", lead.group(2)))
            offset = len(lead.group(1))
            for letter in letters[1:]:  # ``Y Á SUS`` -> ``Y á sus``
                position = offset + letter.start()
                lowered = letter.group(0).lower()
                if letter.group(0).isupper() and lowered in forms:
                    text = text[:position] + lowered + text[position + 1:]
                    changed += 1
        run = [first]
        for previous, current in zip(words, words[1:]):
            if previous is not run[-1]:
                break
            gap = text[previous.end():current.start()]
            if not re.fullmatch(r"[.,;:!?]?\s+", gap):
                break
            run.append(current)
        pieces, last = [], 0
        for match in run:
            form = recased(match.group(0), starts_sentence(text[:match.start()]))
            if form is None:
                continue
            pieces.extend((text[last:match.start()], form))
            last = match.end()
            changed += 1
        pieces.append(text[last:])
        verses[reference] = "".join(pieces)
    return changed


def parse_imp(text: str, recase_chapter_capitals: bool = True) -> Tuple[Dict[str, str], ParseStats]:
    """Parse a ``mod2imp`` dump into ``{reference: clean text}`` and statistics.

    Module/testament headings, verse-0 entries and verses empty after
    :func:`clean_osis` are skipped and counted.  A reference met twice has
    its texts joined with a space.  With ``recase_chapter_capitals`` the
    chapter-initial capitals are undone with :func:`normalise_chapter_capitals`.
    """
    stats = ParseStats()
    raw: Dict[str, str] = {}
    for header, body in iter_imp_entries(text):
        stats.entries += 1
        parsed = parse_reference(header)
        if parsed is None:
            if header.strip().startswith("[") and "Heading" in header:
                stats.skipped_headings += 1
            else:
                stats.unknown_headers.append(header)
            continue
        book, chapter, verse = parsed
        if verse == 0:
            stats.skipped_verse_zero += 1
            continue
        reference = format_reference(book, chapter, verse)
        if reference in raw:
            stats.duplicate_references += 1
            raw[reference] += " " + body
        else:
            raw[reference] = body
    vocabulary = build_vocabulary(raw.values())
    verses: Dict[str, str] = {}
    for reference, body in raw.items():
        cleaned = clean_osis(body, vocabulary)
        if cleaned:
            verses[reference] = cleaned
        else:
            stats.skipped_empty += 1
    if recase_chapter_capitals:
        stats.recased_words = normalise_chapter_capitals(verses)
    stats.verses = len(verses)
    return verses, stats


# --- aligning and splitting -------------------------------------------------


def align(english: Mapping[str, str], spanish: Mapping[str, str]) -> Tuple[List[Pair], AlignStats]:
    """Join two ``{reference: text}`` maps on the reference.

    Returns ``[(reference, english, spanish), ...]`` in canonical book order
    for the references non-empty on both sides, and the counts of those found
    on one side only.
    """
    extra_books: Dict[str, int] = {}
    for reference in list(english) + list(spanish):
        parsed = parse_reference(reference)
        if parsed and parsed[0] not in _BOOK_RANK and parsed[0] not in extra_books:
            extra_books[parsed[0]] = len(extra_books)

    def key(reference: str) -> SortKey:
        return reference_sort_key(reference, extra_books)

    stats = AlignStats()
    pairs = [(ref, english[ref], spanish[ref]) for ref in english
             if ref in spanish and english[ref].strip() and spanish[ref].strip()]
    pairs.sort(key=lambda pair: key(pair[0]))
    english_only = sorted((ref for ref in english
                           if ref not in spanish or not spanish[ref].strip()), key=key)
    spanish_only = sorted((ref for ref in spanish
                           if ref not in english or not english[ref].strip()), key=key)
    stats.pairs = len(pairs)
    stats.english_only, stats.english_only_examples = len(english_only), english_only[:20]
    stats.spanish_only, stats.spanish_only_examples = len(spanish_only), spanish_only[:20]
    return pairs, stats


# --- misaligned verses ------------------------------------------------------


def _content_words(text: str) -> set:
    """Lowercased words of three letters or more (no numbers) of a text."""
    return {word for word in _WORDS.findall(text.lower()) if len(word) >= 3 and not word.isdigit()}


def build_lexicon(pairs: List[Pair], min_count: int = 3,
                  max_share: float = 0.05, min_dice: float = 0.25,
                  per_word: int = 3) -> Dict[str, set]:
    """Learn a rough English -> Spanish word list from verse co-occurrence.

    For words found in at least ``min_count`` and at most ``max_share`` of the
    pairs, the Dice coefficient ``2 c(e, s) / (c(e) + c(s))`` is computed over
    the pairs; each English word keeps up to ``per_word`` Spanish words with a
    coefficient of at least ``min_dice``.  Deterministic (ties broken by word).
    """
    english = [_content_words(en) for _, en, _ in pairs]
    spanish = [_content_words(es) for _, _, es in pairs]
    en_count = collections.Counter(word for words in english for word in words)
    es_count = collections.Counter(word for words in spanish for word in words)
    limit = max(min_count, max_share * len(pairs))
    en_ok = {word for word, count in en_count.items() if min_count <= count <= limit}
    es_ok = {word for word, count in es_count.items() if min_count <= count <= limit}
    together: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for en_words, es_words in zip(english, spanish):
        kept = [word for word in es_words if word in es_ok]
        for word in en_words:
            if word in en_ok:
                together[word].update(kept)
    lexicon: Dict[str, set] = {}
    for word, counts in together.items():
        scored = sorted(((2 * count / (en_count[word] + es_count[other]), other)
                         for other, count in counts.items() if count >= 2),
                        reverse=True)
        chosen = {other for dice, other in scored[:per_word] if dice >= min_dice}
        if chosen:
            lexicon[word] = chosen
    return lexicon


def find_misaligned(pairs: List[Pair], window: int = 5,
                    lexicon: Optional[Dict[str, set]] = None) -> List[str]:
    """Return the references whose two texts are not translations of each other.

    The Reina-Valera module's source followed a Spanish versification that
    ``osis2mod`` forced into the KJV scheme, so in a few places a verse sits
    under the neighbouring reference (Numbers 12:16 is at 13:1 and all of
    Numbers 13 is shifted; 1 Kings 22:43 is split in two; the WEB swaps
    Matthew 23:13 and 14).  With a word list from :func:`build_lexicon`, the
    English text of each pair is compared with the Spanish text of the same
    reference and of the ``window`` pairs on each side in the same book.  A
    pair is a candidate when some neighbour explains at least two more English
    words, and twice as many, as its own Spanish text.  A candidate counts as
    misaligned when it explains four more words, or when another candidate of
    the same chapter is at most three verses away; then the verses between
    such candidates also go.  When at least three and a quarter of the pairs
    of a chapter are misaligned, the whole chapter goes.
    """
    if lexicon is None:
        lexicon = build_lexicon(pairs)
    english = [_content_words(en) for _, en, _ in pairs]
    spanish = [_content_words(es) for _, _, es in pairs]
    parsed = [parse_reference(ref) or (ref, 0, 0) for ref, _, _ in pairs]

    def explained(i: int, j: int) -> int:
        return sum(1 for word in english[i] if word in lexicon and lexicon[word] & spanish[j])

    candidates: Dict[Tuple[str, int], List[Tuple[int, int]]] = collections.defaultdict(list)
    for i in range(len(pairs)):
        if sum(1 for word in english[i] if word in lexicon) < 3:
            continue
        own = explained(i, i)
        best = 0
        for j in range(max(0, i - window), min(len(pairs), i + window + 1)):
            if j != i and parsed[j][0] == parsed[i][0]:
                best = max(best, explained(i, j))
        if best - own >= 2 and best >= 2 * own:
            candidates[parsed[i][:2]].append((i, best - own))
    chapter_size = collections.Counter(p[:2] for p in parsed)
    flagged: set = set()
    for chapter, found in candidates.items():
        confirmed = [i for i, gain in found if gain >= 4]
        for (i, _), (k, _) in zip(found, found[1:]):
            if parsed[k][2] - parsed[i][2] <= 3:
                confirmed.extend(range(i, k + 1))
        confirmed = sorted(set(confirmed))
        if len(confirmed) >= 3 and len(confirmed) * 4 >= chapter_size[chapter]:
            confirmed = [i for i, p in enumerate(parsed) if p[:2] == chapter]
        flagged.update(confirmed)
    return [pairs[i][0] for i in sorted(flagged)]


def length_outliers(pairs: Iterable[Pair], ratio: float = 2.5,
                    minimum: int = 40) -> List[str]:
    """Return the references whose texts differ in length by ``ratio`` or more.

    Only pairs whose longer text has at least ``minimum`` characters count.
    These are mostly verses that one module merged with the next one.
    """
    found = []
    for reference, en, es in pairs:
        longer, shorter = max(len(en), len(es)), max(1, min(len(en), len(es)))
        if longer >= minimum and longer / shorter >= ratio:
            found.append(reference)
    return found


def filter_misaligned(pairs: List[Pair]) -> Tuple[List[Pair], List[str], List[str]]:
    """Drop the pairs found by :func:`find_misaligned` and :func:`length_outliers`.

    Returns ``(kept pairs, misaligned references, length outlier references)``.
    """
    shifted = find_misaligned(pairs)
    uneven = [ref for ref in length_outliers(pairs) if ref not in set(shifted)]
    dropped = set(shifted) | set(uneven)
    return [pair for pair in pairs if pair[0] not in dropped], shifted, uneven


def split_of(reference: str) -> str:
    """Return the split a reference belongs to by hash (before de-duplication).

    ``zlib.crc32(reference.encode("utf-8")) % 100``: 0-3 is ``test``, 4-6 is
    ``dev``, 7-99 is ``train``.  The rule depends on nothing but the reference
    string, so it is the same on every run and machine.
    """
    bucket = zlib.crc32(reference.encode("utf-8")) % 100
    if bucket < TEST_BUCKETS:
        return "test"
    if bucket < TEST_BUCKETS + DEV_BUCKETS:
        return "dev"
    return "train"


def dedup_key(text: str) -> str:
    """Return the form under which two texts count as duplicates (lowercase, single spaces)."""
    return " ".join(text.lower().split())


def assign_splits(pairs: Iterable[Pair],
                  split_fn: Callable[[str], str] = split_of) -> Tuple[List[Row], SplitStats]:
    """Give each pair its split and remove texts shared across splits.

    Returns ``[(reference, split, english, spanish), ...]`` (input order kept)
    and statistics.  A pair whose English or Spanish text (see
    :func:`dedup_key`) occurs in ``test`` is dropped from ``train`` and
    ``dev``; one whose text occurs in ``dev`` is dropped from ``train``.
    Duplicates within one split are kept.
    """
    pairs = list(pairs)
    labelled = [(ref, split_fn(ref), en, es) for ref, en, es in pairs]
    stats = SplitStats()
    stats.before = dict(collections.Counter(split for _, split, _, _ in labelled))
    held: Dict[str, set] = {"test": set(), "dev": set()}
    for _, split, en, es in labelled:
        if split in held:
            held[split].update((("en", dedup_key(en)), ("es", dedup_key(es))))
    kept: List[Row] = []
    removed: Dict[str, int] = collections.Counter()
    for ref, split, en, es in labelled:
        keys = {("en", dedup_key(en)), ("es", dedup_key(es))}
        higher = {"train": ("test", "dev"), "dev": ("test",), "test": ()}[split]
        if any(keys & held[other] for other in higher):
            removed[split] += 1
            continue
        kept.append((ref, split, en, es))
    stats.removed = dict(removed)
    stats.after = dict(collections.Counter(split for _, split, _, _ in kept))
    return kept, stats


# --- writing ----------------------------------------------------------------


def tsv_bytes(rows: Iterable[Row]) -> bytes:
    """Return the UTF-8 TSV text (header included) for ``rows``.

    Raises ``ValueError`` naming the row's reference and the column if a field
    contains a tab, carriage return or newline.
    """
    buffer = io.StringIO()
    for row in [HEADER, *rows]:
        for index, value in enumerate(row):
            if any(ch in value for ch in "\t\r\n"):
                column = HEADER[index] if index < len(HEADER) else f"column {index + 1}"
                raise ValueError(f"{row[0]}: the {column} field contains a tab, carriage "
                                 f"return or newline: {value!r}")
        buffer.write("\t".join(row) + "\n")
    return buffer.getvalue().encode("utf-8")


def write_corpus(rows: Iterable[Row], path: Path) -> int:
    """Write ``rows`` as a reproducible gzip TSV at ``path``; return its size in bytes.

    The gzip member has no file name and ``mtime=0`` so the bytes depend only
    on the rows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as handle:
        handle.write(tsv_bytes(rows))
    data = raw.getvalue()
    path.write_bytes(data)
    return len(data)


def _summarise(references: List[str]) -> str:
    """Return references grouped by chapter: ``Numbers 13:1-33, Judges 14:19``."""
    groups: Dict[Tuple[str, int], List[int]] = {}
    for reference in references:
        book, chapter, verse = parse_reference(reference)
        groups.setdefault((book, chapter), []).append(verse)
    parts = []
    for (book, chapter), verses in groups.items():
        spans, start = [], verses[0]
        for previous, current in zip(verses, verses[1:] + [None]):
            if current != previous + 1 if current is not None else True:
                spans.append(f"{start}" if start == previous else f"{start}-{previous}")
                start = current
        parts.append(f"{book} {chapter}:{','.join(spans)}")
    return "; ".join(parts)


def build(english_imp: str, spanish_imp: str, output: Optional[Path],
          log: Callable[[str], None] = print,
          drop_misaligned: bool = True) -> List[Row]:
    """Run the whole pipeline on two dumps; write ``output`` unless it is ``None``.

    Returns the rows written.  Progress and counts go to ``log``.
    """
    english, english_stats = parse_imp(english_imp)
    spanish, spanish_stats = parse_imp(spanish_imp)
    for line in english_stats.lines("english") + spanish_stats.lines("spanish"):
        log(line)
    pairs, align_stats = align(english, spanish)
    for line in align_stats.lines():
        log(line)
    if drop_misaligned:
        pairs, shifted, uneven = filter_misaligned(pairs)
        log(f"misaligned: dropped {len(shifted)} pairs whose texts match a neighbouring "
            f"verse better (versification shifts): {_summarise(shifted)}")
        log(f"misaligned: dropped {len(uneven)} pairs with a length ratio >= 2.5: "
            f"{', '.join(uneven)}")
        log(f"misaligned: {len(pairs)} pairs left")
    rows, split_stats = assign_splits(pairs)
    for line in split_stats.lines():
        log(line)
    log(f"total: {len(rows)} pairs")
    if output is not None:
        size = write_corpus(rows, Path(output))
        log(f"wrote {output} ({size} bytes)")
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; see ``--help``."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.build_bible_corpus",
        description="Build the verse-aligned English-Spanish Bible corpus (World English "
                    "Bible / Reina-Valera 1909, both public domain) from Debian's SWORD "
                    "modules, as a reproducible gzip TSV with fixed train/dev/test splits.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="gzip TSV to write (default: %(default)s)")
    parser.add_argument("--english-module", default=DEFAULT_ENGLISH_MODULE,
                        help="SWORD module of the English text (default: %(default)s, "
                             "Debian package sword-text-web)")
    parser.add_argument("--spanish-module", default=DEFAULT_SPANISH_MODULE,
                        help="SWORD module of the Spanish text (default: %(default)s, "
                             "Debian package sword-text-sparv)")
    parser.add_argument("--english-imp", type=Path,
                        help="read this mod2imp dump of the English module instead of "
                             "running mod2imp")
    parser.add_argument("--spanish-imp", type=Path,
                        help="read this mod2imp dump of the Spanish module instead of "
                             "running mod2imp")
    parser.add_argument("--mod2imp", default="mod2imp",
                        help="mod2imp program to run (default: %(default)s, Debian package "
                             "libsword-utils)")
    parser.add_argument("--keep-misaligned", action="store_true",
                        help="keep the pairs that find_misaligned/length_outliers would drop")
    args = parser.parse_args(argv)
    try:
        english_imp = (args.english_imp.read_text(encoding="utf-8") if args.english_imp
                       else run_mod2imp(args.english_module, args.mod2imp))
        spanish_imp = (args.spanish_imp.read_text(encoding="utf-8") if args.spanish_imp
                       else run_mod2imp(args.spanish_module, args.mod2imp))
    except (OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    build(english_imp, spanish_imp, args.output, drop_misaligned=not args.keep_misaligned)
    return 0


if __name__ == "__main__":
    sys.exit(main())
