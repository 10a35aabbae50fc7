"""Tests of tools/build_bible_corpus.py and of the corpus it built.

The builder is run on a small fixture written in the exact ``mod2imp`` format
with markup copied from the real SWORD modules (engWEB2015eb, spaRV1909eb), so
neither ``mod2imp`` nor the Debian packages are needed.  The shipped corpus
``training/translation/data/bible.en-es.tsv.gz`` is checked as well.
"""

from __future__ import annotations

import gzip
import random
import re
import unicodedata
from pathlib import Path

import pytest

from tools import build_bible_corpus as bc

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "training" / "translation" / "data" / "bible.en-es.tsv.gz"

# --- fixture ------------------------------------------------------------------

ENGLISH_IMP = """\
$$$[ Module Heading ]

$$$[ Testament 1 Heading ]
<milestone type="x-importer" subType="x-osis2mod" n="$Rev: 3769 $ (SWORD: 1.9.0)"/>
$$$Genesis 0:0
<div sID="gen2" type="front"/> <milestone n="Preface" type="x-usfm-h"/> <title level="1" type="main">Preface to the World English Bible</title> <div sID="gen4" type="x-p"/> The Holy Bible is a collection of books and letters.<note placement="foot"><reference type="annotateRef">1:0 </reference>“Christ” means “Anointed One”.</note><div eID="gen4" type="x-p"/> <div canonical="true" osisID="Gen" sID="gen24" type="book"/> <title level="1" type="main">Genesis</title> <div sID="gen25" type="x-p"/>
$$$Genesis 1:0
<chapter n="1" osisID="Gen.1" sID="Gen.1"/>
$$$Genesis 1:1
<w lemma="strong:H0430">In</w> <w lemma="strong:H0853">the</w> <w lemma="strong:H7225">beginning</w>, <w lemma="strong:H0430">God</w><note placement="foot"><reference type="annotateRef">1:1 </reference>The Hebrew word rendered “God” is “אֱלֹהִ֑ים” (Elohim).</note><w lemma="strong:H1254">created</w> <w lemma="strong:H0853">the</w> <w lemma="strong:H8064">heavens</w> <w lemma="strong:H0430">and</w> <w lemma="strong:H0853">the</w> <w lemma="strong:H0776">earth</w>.
$$$Genesis 1:2
<w lemma="strong:H6440">The</w> <w lemma="strong:H0776">earth</w> <w lemma="strong:H1961">was</w> <w lemma="strong:H8414">formless</w> <w lemma="strong:H0430">and</w> <w lemma="strong:H8414">empty</w>. <w lemma="strong:H2822">Darkness</w> <w lemma="strong:H1961">was</w> <w lemma="strong:H5921">on</w> <w lemma="strong:H6440">the</w> <w lemma="strong:H6440">surface</w> <w lemma="strong:H0776">of</w> <w lemma="strong:H6440">the</w> <w lemma="strong:H8415">deep</w>. <div eID="gen25" type="x-p"/>
$$$Genesis 1:3
<div type="x-milestone" subType="x-preverse" sID="pv1"/><div sID="gen26" type="x-p"/><div type="x-milestone" subType="x-preverse" eID="pv1"/><w lemma="strong:H0430">God</w> <w lemma="strong:H0559">said</w>, &#8220;<w lemma="strong:H1961">Let</w> <w lemma="strong:H1961">there</w> <w lemma="strong:H1961">be</w> <w lemma="strong:H0216">light</w>,&#8221; <w lemma="strong:H0430">and</w> <w lemma="strong:H1961">there</w> <w lemma="strong:H1961">was</w> <w lemma="strong:H0216">light</w>.
$$$Genesis 1:4
<w lemma="strong:H0430">God</w> <w lemma="strong:H7200">saw</w> <w lemma="strong:H0853">the</w> <w lemma="strong:H0216">light</w>, &amp; <w lemma="strong:H7200">saw</w> <w lemma="strong:H3588">that</w> <w lemma="strong:H3588">it</w> <w lemma="strong:H0430">was</w> <w lemma="strong:H2896">good</w>.
$$$Genesis 2:12
<w lemma="strong:H2091">and</w> <w lemma="strong:H2091">the</w> <w lemma="strong:H2091">gold</w> <w lemma="strong:H1931">of</w> <w lemma="strong:H1931">that</w> <w lemma="strong:H0776">land</w> <w lemma="strong:H2896">is</w> <w lemma="strong:H2896">good</w>. <w lemma="strong:H0916">Bdellium</w><note placement="foot"><reference type="annotateRef">2:12 </reference>or, aromatic resin</note> <w lemma="strong:H0068">and</w> <w lemma="strong:H7718">onyx</w> <w lemma="strong:H0068">stone</w> <w lemma="strong:H8033">are</w> <w lemma="strong:H8033">also</w> <w lemma="strong:H8033">there</w>.
$$$Genesis 27:4
Make me savory food, such as I love, and bring it to me, that I may eat, and that my soul may bless you before I die.”
$$$I Samuel 14:1
<div sID="gen3120" type="x-p"/>Now it happened one day that Jonathan the son of Saul said to the young man who bore his armor, “Come! Let’s go over to the Philistines’ garrison that is on the other side.” But he didn’t tell his father.
$$$Psalms 3:0
<chapter n="3" osisID="Ps.3" sID="Ps.3"/> <milestone n="Psalm 3" type="x-chapterLabel"/>
$$$Psalms 3:1
<div type="x-milestone" subType="x-preverse" sID="pv4877"/><title canonical="true" type="psalm">A Psalm by David, when he fled from Absalom his son.</title> <lg sID="gen7860"/> <l level="1" sID="gen7861"/><div type="x-milestone" subType="x-preverse" eID="pv4877"/>Yahweh, how my adversaries have increased!<l eID="gen7861" level="1"/> <l level="2" sID="gen7862"/>Many are those who rise up against me. <l eID="gen7862" level="2"/>
$$$Psalms 3:2
<div type="x-milestone" subType="x-preverse" sID="pv4878"/><l level="1" sID="gen7863"/><div type="x-milestone" subType="x-preverse" eID="pv4878"/>Many there are who say of my soul,<l eID="gen7863" level="1"/> <l level="2" sID="gen7864"/>“There is no help for him in God.”<note placement="foot"><reference type="annotateRef">3:2 </reference>The Hebrew word rendered “God” is “אֱלֹהִ֑ים” (Elohim).</note><l eID="gen7864" level="2"/> <l sID="gen7865" type="selah"/>Selah.<l eID="gen7865" type="selah"/>
$$$Psalms 136:1
<div type="x-milestone" subType="x-preverse" sID="pv7"/><lg sID="g1"/> <l level="1" sID="g2"/><div type="x-milestone" subType="x-preverse" eID="pv7"/>Give thanks to Yahweh, for he is good;<l eID="g2" level="1"/> <l level="2" sID="g3"/>for his loving kindness endures forever.<l eID="g3" level="2"/>
$$$Psalms 136:2
Give thanks to Yahweh, for he is good; for his loving kindness endures forever.
$$$Psalms 136:3
Give thanks to the Lord of lords; for his loving kindness endures forever.
$$$Psalms 136:8
The sun to rule by day; for his loving kindness endures forever.
$$$Psalms 136:21
The sun to rule by day; for his loving kindness endures forever.
$$$Psalms 136:27
Oh give thanks to the God of heaven; for his loving kindness endures forever.
$$$Song of Solomon 1:2
<div type="x-milestone" subType="x-preverse" sID="pv8242"/><speaker>Beloved</speaker> <lg sID="gen15617"/> <l level="1" sID="gen15618"/><div type="x-milestone" subType="x-preverse" eID="pv8242"/>Let him kiss me with the kisses of his mouth;<l eID="gen15618" level="1"/> <l level="2" sID="gen15619"/>for your love is better than wine. <l eID="gen15619" level="2"/>
$$$Tobit 1:1
<div sID="gen5223" type="x-p"/>The book of the words of Tobit, the son of Tobiel, the son of Ananiel.
$$$[ Testament 2 Heading ]
$$$Matthew 3:15
<div type="x-milestone" subType="x-preverse" sID="pv13793"/><div sID="gen30321" type="x-p"/><div type="x-milestone" subType="x-preverse" eID="pv13793"/>But Jesus, answering, said to him, <q marker="" who="Jesus">“Allow it now, for this is the fitting way for us to fulfill all righteousness.”</q>Then he allowed him. <div eID="gen30321" type="x-p"/>
$$$Luke 17:36
<note placement="foot"><reference type="annotateRef">17:36 </reference>Some Greek manuscripts add: “Two will be in the field: the one taken, and the other left.”</note>
$$$Revelation of John 22:21
<div type="x-milestone" subType="x-preverse" sID="pv16039"/><div sID="gen35836" type="x-p"/><div type="x-milestone" subType="x-preverse" eID="pv16039"/>The grace of the Lord Jesus Christ be with all the saints. Amen.  <chapter eID="Rev.22"/><div eID="gen35836" type="x-p"/> <div canonical="true" eID="gen35575" osisID="Rev" type="book"/> <div sID="gen35837" type="glossary"/> <title level="1" type="main">World English Bible Glossary</title> <list> <item subType="x-introduction" type="x-indent-1"><seg type="keyword">Abba</seg> Abba is a Chaldee word for father.</item> </list>
"""  # noqa: E501 (mod2imp entries are single lines)

SPANISH_IMP = """\
$$$[ Module Heading ]

$$$[ Testament 1 Heading ]
<milestone type="x-importer" subType="x-osis2mod" n="$Rev: 3769 $ (SWORD: 1.9.0)"/>
$$$Genesis 0:0
<div canonical="true" osisID="Gen" sID="gen1" type="book"/> <title type="main">GÉNESIS</title>
$$$Genesis 1:0
<div sID="gen3" type="x-p"/><chapter n="1" osisID="Gen.1" sID="Gen.1"/>
$$$Genesis 1:1
<w lemma="strong:H7225">EN el principio</w> <w lemma="strong:H1254">crió</w> <w lemma="strong:H0430">Dios</w> <w lemma="strong:H8064">los cielos</w> <w lemma="strong:H0776">y la tierra</w>.
$$$Genesis 1:2
<w lemma="strong:H0776">Y la tierra</w> <w lemma="strong:H1961">estaba</w> <w lemma="strong:H8414">desordenada</w> <w lemma="strong:H0922">y vacía</w>, <w lemma="strong:H2822">y las tinieblas</w> <w lemma="strong:H5921">estaban sobre</w> <w lemma="strong:H6440">la haz</w> <w lemma="strong:H8415">del abismo</w>.
$$$Genesis 1:3
<w lemma="strong:H0559">Y dijo</w> <w lemma="strong:H0430">Dios</w>: <w lemma="strong:H1961">Sea</w> <w lemma="strong:H0216">la luz</w>: <w lemma="strong:H1961">y fué</w> <w lemma="strong:H0216">la luz</w>.
$$$Genesis 2:12
<w lemma="strong:H2091">Y el oro</w> <w lemma="strong:H1931">de aquella</w> <w lemma="strong:H0776">tierra</w> <w lemma="strong:H2896">es bueno</w>: <w lemma="strong:H8033">hay allí</w><transChange type="added">también</transChange><w lemma="strong:H0916">bdelio</w> <w lemma="strong:H0068">y piedra</w> <w lemma="strong:H7718">cornerina</w>.
$$$Genesis 27:4
<w lemma="strong:H6213">Y hazme</w> <w lemma="strong:H4303">un guisado</w>, <w lemma="strong:H0834">como</w> <w lemma="strong:H0157">yo gusto</w>, <w lemma="strong:H0935">y tráeme</w><transChange type="added">lo</transChange>, <w lemma="strong:H0398">y comeré</w>; <w lemma="strong:H5668">para que</w> <w lemma="strong:H1288">te bendiga</w> <w lemma="strong:H5315">mi alma</w> <w lemma="strong:H2962">antes que</w> <w lemma="strong:H4191">muera</w>.
$$$I Samuel 14:1
<w lemma="strong:H1961">Y UN día</w> <w lemma="strong:H1961">aconteció</w>, que Jonathán hijo de Saúl dijo á su criado que le traía las armas: Ven, y pasemos á la guarnición de los Filisteos, que está á aquel lado. Y no<transChange type="added">lo</transChange>hizo saber á su padre.
$$$Psalms 3:0
<div sID="gen501" type="x-p"/><chapter n="3" osisID="Ps.3" sID="Ps.3"/>
$$$Psalms 3:1
Salmo de David, cuando huía de delante de Absalom su hijo. ¡<w lemma="strong:H3068">OH Jehová</w>, <w lemma="strong:H4100">cuánto</w> <w lemma="strong:H7231">se han multiplicado</w> <w lemma="strong:H6862">mis enemigos</w>! <w lemma="strong:H7227">muchos</w> <w lemma="strong:H6965">se levantan</w> <w lemma="strong:H5921">contra mí</w>.
$$$Psalms 3:2
<w lemma="strong:H7227">Muchos</w> <w lemma="strong:H0559">dicen</w> <w lemma="strong:H5315">de mi vida</w>: <w lemma="strong:H0369">No hay</w> <w lemma="strong:H3444">para él salud</w> <w lemma="strong:H0430">en Dios</w>. ( <w lemma="strong:H5542">Selah</w>. )
$$$Psalms 136:1
Alabad á Jehová, porque es bueno; porque para siempre es su misericordia.
$$$Psalms 136:2
Alabad al Dios de los dioses, porque para siempre es su misericordia.
$$$Psalms 136:3
AL SOL para que dominase en el día, porque para siempre es su misericordia.
$$$Psalms 136:8
Al sol para que dominase en el día, porque para siempre es su misericordia.
$$$Psalms 136:21
Y dió la tierra de ellos en heredad, porque para siempre es su misericordia.
$$$Psalms 136:27
Al sol para que dominase en el día,   porque para siempre es su misericordia.
$$$Song of Solomon 1:2
¡<w lemma="strong:H5401">Oh si él me besara</w> <w lemma="strong:H5390">con ósculos</w> <w lemma="strong:H6310">de su boca</w>! <w lemma="strong:H2896">porque mejores</w> <w lemma="strong:H1730">son tus amores</w> <w lemma="strong:H3196">que el vino</w>.
$$$[ Testament 2 Heading ]
$$$Matthew 3:15
<w lemma="strong:G1161">Empero</w> <w lemma="strong:G0611">respondiendo</w> <w lemma="strong:G2424">Jesús</w> <w lemma="strong:G2036">le dijo</w>: <w lemma="strong:G0863">Deja</w> <w lemma="strong:G0737">ahora</w>; <w lemma="strong:G1063">porque</w> <w lemma="strong:G3779">así</w> <w lemma="strong:G2254">nos</w> <w lemma="strong:G4241">conviene</w> <w lemma="strong:G4137">cumplir</w> <w lemma="strong:G3956">toda</w> <w lemma="strong:G1343">justicia</w>. <w lemma="strong:G5119">Entonces</w> <w lemma="strong:G0863">le dejó</w>.
$$$Luke 17:36
<w lemma="strong:G1417">Dos</w> <w lemma="strong:G2071">estarán</w> <w lemma="strong:G1722">en el campo</w>; <w lemma="strong:G3588">el uno</w> <w lemma="strong:G3880">será tomado</w>, <w lemma="strong:G2532">y el otro</w> <w lemma="strong:G0863">dejado</w>.
$$$Revelation of John 22:21
<w lemma="strong:G3588">La gracia</w> <w lemma="strong:G2257">de nuestro</w> <w lemma="strong:G2962">Señor</w> <w lemma="strong:G2424">Jesucristo</w> <w lemma="strong:G3326">sea con</w> <w lemma="strong:G3956">todos</w> <w lemma="strong:G5216">vosotros</w>. <w lemma="strong:G0281">Amén</w>.  <chapter eID="Rev.22"/><div eID="gen1233" type="x-p"/> <div canonical="true" eID="gen1234" osisID="Rev" type="book"/>
"""  # noqa: E501

#: The rows the builder must write for the fixture, in order.
EXPECTED_ROWS = [
    ("Genesis 1:1", "train",
     "In the beginning, God created the heavens and the earth.",
     "En el principio crió Dios los cielos y la tierra."),
    ("Genesis 1:2", "train",
     "The earth was formless and empty. Darkness was on the surface of the deep.",
     "Y la tierra estaba desordenada y vacía, y las tinieblas estaban sobre la haz del abismo."),
    ("Genesis 1:3", "train",
     "God said, “Let there be light,” and there was light.",
     "Y dijo Dios: Sea la luz: y fué la luz."),
    ("Genesis 2:12", "test",
     "and the gold of that land is good. Bdellium and onyx stone are also there.",
     "Y el oro de aquella tierra es bueno: hay allí también bdelio y piedra cornerina."),
    ("Genesis 27:4", "train",
     "Make me savory food, such as I love, and bring it to me, that I may eat, and that my "
     "soul may bless you before I die.”",
     "Y hazme un guisado, como yo gusto, y tráemelo, y comeré; para que te bendiga mi alma "
     "antes que muera."),
    ("1 Samuel 14:1", "train",
     "Now it happened one day that Jonathan the son of Saul said to the young man who bore "
     "his armor, “Come! Let’s go over to the Philistines’ garrison that is on the other "
     "side.” But he didn’t tell his father.",
     "Y un día aconteció, que Jonathán hijo de Saúl dijo á su criado que le traía las armas: "
     "Ven, y pasemos á la guarnición de los Filisteos, que está á aquel lado. Y no lo hizo "
     "saber á su padre."),
    ("Psalms 3:1", "train",
     "A Psalm by David, when he fled from Absalom his son. Yahweh, how my adversaries have "
     "increased! Many are those who rise up against me.",
     "Salmo de David, cuando huía de delante de Absalom su hijo. ¡Oh Jehová, cuánto se han "
     "multiplicado mis enemigos! muchos se levantan contra mí."),
    ("Psalms 3:2", "train",
     "Many there are who say of my soul, “There is no help for him in God.” Selah.",
     "Muchos dicen de mi vida: No hay para él salud en Dios. (Selah.)"),
    ("Psalms 136:1", "dev",
     "Give thanks to Yahweh, for he is good; for his loving kindness endures forever.",
     "Alabad á Jehová, porque es bueno; porque para siempre es su misericordia."),
    ("Psalms 136:8", "test",
     "The sun to rule by day; for his loving kindness endures forever.",
     "Al sol para que dominase en el día, porque para siempre es su misericordia."),
    ("Psalms 136:21", "test",
     "The sun to rule by day; for his loving kindness endures forever.",
     "Y dió la tierra de ellos en heredad, porque para siempre es su misericordia."),
    ("Song of Solomon 1:2", "train",
     "Let him kiss me with the kisses of his mouth; for your love is better than wine.",
     "¡Oh si él me besara con ósculos de su boca! porque mejores son tus amores que el vino."),
    ("Matthew 3:15", "train",
     "But Jesus, answering, said to him, “Allow it now, for this is the fitting way for us to "
     "fulfill all righteousness.” Then he allowed him.",
     "Empero respondiendo Jesús le dijo: Deja ahora; porque así nos conviene cumplir toda "
     "justicia. Entonces le dejó."),
    ("Revelation 22:21", "train",
     "The grace of the Lord Jesus Christ be with all the saints. Amen.",
     "La gracia de nuestro Señor Jesucristo sea con todos vosotros. Amén."),
]


@pytest.fixture()
def imp_files(tmp_path):
    """Write the two fixture dumps and return their paths."""
    english = tmp_path / "web.imp"
    spanish = tmp_path / "rv.imp"
    english.write_text(ENGLISH_IMP, encoding="utf-8")
    spanish.write_text(SPANISH_IMP, encoding="utf-8")
    return english, spanish


def read_rows(path):
    """Return (header, rows) of a corpus file."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        lines = handle.read().split("\n")
    assert lines[-1] == ""
    header = tuple(lines[0].split("\t"))
    return header, [tuple(line.split("\t")) for line in lines[1:-1]]


# --- references -------------------------------------------------------------


@pytest.mark.parametrize("header, expected", [
    ("Genesis 1:1", ("Genesis", 1, 1)),
    ("I Samuel 14:1", ("1 Samuel", 14, 1)),
    ("II Kings 2:11", ("2 Kings", 2, 11)),
    ("III John 1:14", ("3 John", 1, 14)),
    ("IV Maccabees 18:24", ("4 Maccabees", 18, 24)),
    ("Revelation of John 22:21", ("Revelation", 22, 21)),
    ("Song of Solomon 1:2", ("Song of Solomon", 1, 2)),
    ("Esther (Greek) 1:1", ("Esther (Greek)", 1, 1)),
    ("Isaiah 0:0", ("Isaiah", 0, 0)),
    ("[ Module Heading ]", None),
    ("[ Testament 2 Heading ]", None),
])
def test_parse_reference(header, expected):
    assert bc.parse_reference(header) == expected


def test_reference_order_is_canonical():
    refs = ["Revelation 1:1", "Genesis 10:1", "Tobit 1:1", "Genesis 2:3", "Genesis 2:10",
            "1 Samuel 1:1", "Malachi 4:6", "Matthew 1:1"]
    assert sorted(refs, key=bc.reference_sort_key) == [
        "Genesis 2:3", "Genesis 2:10", "Genesis 10:1", "1 Samuel 1:1", "Malachi 4:6",
        "Matthew 1:1", "Revelation 1:1", "Tobit 1:1"]


# --- cleaning ---------------------------------------------------------------


@pytest.mark.parametrize("osis, expected", [
    # a footnote glued between two words leaves one space
    ('<w lemma="strong:H0430">God</w><note placement="foot"><reference type="annotateRef">'
     '1:1 </reference>The Hebrew word rendered “God” is “אֱלֹהִ֑ים” (Elohim).</note>'
     '<w lemma="strong:H1254">created</w> the earth.',
     "God created the earth."),
    ('Yahweh’s<note placement="foot"><reference type="annotateRef">1:1 </reference>“Yahweh” '
     'is God’s proper Name.</note>word that came to Hosea',
     "Yahweh’s word that came to Hosea"),
    ('Helkias, Zacharias, and<note placement="foot"><reference type="annotateRef">1:8 '
     '</reference><catchWord>Jehiel, </catchWord>2 Chronicles 35:8.</note>Esyelus, the rulers',
     "Helkias, Zacharias, and Esyelus, the rulers"),
    ('Bethsphage,<note placement="foot"><reference type="annotateRef">21:1 </reference>TR '
     '&amp;NU read “Bethphage”</note> to the Mount of Olives',
     "Bethsphage, to the Mount of Olives"),
    ('came to Bethany,<note type="crossReference"><reference>John 11:1</reference></note>where',
     "came to Bethany, where"),
    ('mouth.’”</q><note type="crossReference"><reference subType="x-origin" '
     'type="annotateRef">4:4 </reference><reference>Deuteronomy 8:3</reference></note>'
     '<div eID="gen30325" type="x-p"/>',
     "mouth.’”"),
    ('has become the cornerstone.<note placement="foot"><reference type="annotateRef">118:22 '
     '</reference>Literally, <rdg type="alternate">head of the corner</rdg></note>'
     '<l eID="gen12382" level="2"/>',
     "has become the cornerstone."),
    # quotations: the text stays, a glued closing tag leaves a space
    ('said to him, <q marker="" who="Jesus">“Allow it now.”</q>Then he allowed him.',
     "said to him, “Allow it now.” Then he allowed him."),
    # headings and speakers go with their text; canonical psalm titles stay
    ('<title type="x-introduction">What is the Holy Bible?</title> <div sID="gen4" '
     'type="x-p"/> The Holy Bible is a collection.',
     "The Holy Bible is a collection."),
    ('<title canonical="true" type="psalm">A Psalm by David.</title> <lg sID="g1"/> '
     '<l level="1" sID="g2"/>Yahweh, how my adversaries have increased!<l eID="g2" level="1"/>',
     "A Psalm by David. Yahweh, how my adversaries have increased!"),
    ('<speaker>Friends</speaker> <lg sID="gen15626"/> <l level="1" sID="gen15627"/>We will be '
     'glad.<l eID="gen15627" level="1"/>',
     "We will be glad."),
    # line and paragraph marks become spaces
    ('the beginning of my strength,<l eID="gen592" level="1"/><l level="2" sID="gen593"/>'
     'excelling in dignity.<lb type="x-p"/>Simeon',
     "the beginning of my strength, excelling in dignity. Simeon"),
    ('<list> <item type="x-indent-1">Of the sons of Phinehas, Gershom.</item><item '
     'type="x-indent-1">Of the sons of Ithamar, Daniel.</item> </list>',
     "Of the sons of Phinehas, Gershom. Of the sons of Ithamar, Daniel."),
    # other inline elements keep their text without adding spaces
    ('the <divineName>Lord</divineName>’s house, <name type="x-usfm-bk">The Book of the Wars'
     '</name>, <seg type="keyword">Abba</seg>',
     "the Lord’s house, The Book of the Wars, Abba"),
    # entities, spaces around punctuation, Unicode normal form, whitespace
    ("&quot;Ye&quot; &amp; &#8220;you&#8221; &lt;3 &#x2019;",
     "\"Ye\" & “you” <3 ’"),
    ("word , word ; ( x ) ¿ y ? ¡ z ! « w » : end .", "word, word; (x) ¿y? ¡z! «w»: end."),
    ("Mas\u00a0el\tque \n hace", "Mas el que hace"),
    ("cora\u0301zo\u0301n, nin\u0303o, pingu\u0308ino", "corázón, niño, pingüino"),
    # material after the end of a book (the WEB glossary) is not verse text
    ('Amen. <chapter eID="Rev.22"/> <div canonical="true" eID="gen35575" osisID="Rev" '
     'type="book"/> <div sID="gen35837" type="glossary"/> Abba is a Chaldee word.',
     "Amen."),
    # a tag cut off at the end of an entry is dropped
    ('in his God. <div eID="gen27404" type="x-p"/> <d', "in his God."),
    # words the Reina-Valera marks as added
    ("hay allí<transChange type=\"added\">también</transChange>bdelio y piedra",
     "hay allí también bdelio y piedra"),
    ("y tráeme<transChange type=\"added\">lo</transChange>, y comeré",
     "y tráemelo, y comeré"),
    ("y díjo<transChange type=\"added\">le</transChange>Dios: Pide",
     "y díjole Dios: Pide"),
    ("Sube y posée<transChange type=\"added\">la</transChange>, como", "Sube y poséela, como"),
    ("para sacar<transChange type=\"added\">la</transChange>.", "para sacarla."),
    ("Y no<transChange type=\"added\">lo</transChange>hizo saber", "Y no lo hizo saber"),
    ("si Dios<transChange type=\"added\">lo</transChange>permitiere", "si Dios lo permitiere"),
    ("y su ancho<transChange type=\"added\">era</transChange>de diez codos",
     "y su ancho era de diez codos"),
    ("escudo, <transChange type=\"added\">y</transChange>tu galardón", "escudo, y tu galardón"),
    ("¿<transChange type=\"added\">Es</transChange> esto", "¿Es esto"),
    # nothing left
    ('<note placement="foot"><reference type="annotateRef">17:36 </reference>Some Greek '
     'manuscripts add: “Two will be in the field.”</note>', ""),
    ('<chapter n="1" osisID="Gen.1" sID="Gen.1"/>', ""),
])
def test_clean_osis(osis, expected):
    assert bc.clean_osis(osis) == expected


def test_clean_osis_uses_the_vocabulary_for_enclitics():
    osis = "Dad<transChange type=\"added\">me</transChange> agua"
    assert bc.clean_osis(osis) == "Dad me agua"
    assert bc.clean_osis(osis, {"dadme": 2}) == "Dadme agua"
    # an accented word common on its own is a noun, not a verb with an enclitic
    osis = "su ejército<transChange type=\"added\">se llamaba</transChange>Sísara"
    assert bc.clean_osis(osis, {"ejército": 50}) == "su ejército se llamaba Sísara"


def test_clean_osis_output_is_nfc_and_single_line():
    text = bc.clean_osis("a\u0301\n<l/>b\r\n\tc")
    assert text == unicodedata.normalize("NFC", text) == "á b c"


def test_normalise_chapter_capitals():
    verses = {
        "Genesis 1:1": "EN el principio crió Dios los cielos.",
        "Genesis 1:2": "Y la tierra estaba desordenada, y en el abismo.",
        "Genesis 4:1": "Y CONOCIÓ Adam á su mujer.",
        "Genesis 4:2": "Y después conoció su tierra.",
        "Genesis 21:1": "Y JEHOVÁ visitó á Sara.",
        "Genesis 21:2": "Y dijo Jehová á Sara.",
        "2 Kings 21:1": "DE DOCE años era Manasés.",
        "2 Kings 21:2": "de doce hijos.",
        "Psalms 39:1": "Salmo de David. YO DIJE: Atenderé á mis caminos.",
        "Psalms 39:2": "yo dije, yo.",
        "Luke 17:1": "Y Á SUS discípulos dice.",
        "Luke 17:2": "á sus amigos.",
        "Psalms 147:1": "Alabad á JAH, porque es bueno.",
        "Psalms 147:2": "ALABAD JAH. Alabad á JAH. Load á JAH.",
        "Psalms 148:1": "ALABAD JAH: alabad á Jehová.",
        "Psalms 148:2": "alabad.",
        "Jeremiah 23:6": "Dijo Jehová: JEHOVÁ, JUSTICIA NUESTRA.",
    }
    changed = bc.normalise_chapter_capitals(verses)
    assert verses == {
        "Genesis 1:1": "En el principio crió Dios los cielos.",
        "Genesis 1:2": "Y la tierra estaba desordenada, y en el abismo.",
        "Genesis 4:1": "Y conoció Adam á su mujer.",
        "Genesis 4:2": "Y después conoció su tierra.",
        "Genesis 21:1": "Y Jehová visitó á Sara.",
        "Genesis 21:2": "Y dijo Jehová á Sara.",
        "2 Kings 21:1": "De doce años era Manasés.",
        "2 Kings 21:2": "de doce hijos.",
        "Psalms 39:1": "Salmo de David. Yo dije: Atenderé á mis caminos.",
        "Psalms 39:2": "yo dije, yo.",
        "Luke 17:1": "Y á sus discípulos dice.",
        "Luke 17:2": "á sus amigos.",
        "Psalms 147:1": "Alabad á JAH, porque es bueno.",
        "Psalms 147:2": "ALABAD JAH. Alabad á JAH. Load á JAH.",
        "Psalms 148:1": "Alabad JAH: alabad á Jehová.",
        "Psalms 148:2": "alabad.",
        "Jeremiah 23:6": "Dijo Jehová: JEHOVÁ, JUSTICIA NUESTRA.",
    }
    assert changed == 10


# --- parsing and aligning the fixture -----------------------------------------


def test_parse_imp_english():
    verses, stats = bc.parse_imp(ENGLISH_IMP)
    assert stats.entries == 26
    assert stats.skipped_headings == 3
    assert stats.skipped_verse_zero == 3
    assert stats.skipped_empty == 1  # Luke 17:36 is only a footnote in the WEB
    assert stats.verses == len(verses) == 19
    assert stats.unknown_headers == []
    assert verses["Genesis 1:4"] == "God saw the light, & saw that it was good."
    assert verses["Tobit 1:1"] == (
        "The book of the words of Tobit, the son of Tobiel, the son of Ananiel.")
    assert "Luke 17:36" not in verses and "Genesis 1:0" not in verses
    assert "1 Samuel 14:1" in verses and "Revelation 22:21" in verses
    for ref, text in verses.items():
        assert text == text.strip() and "  " not in text and "<" not in text, ref
        assert "Elohim" not in text and "Glossary" not in text and "Beloved" not in text


def test_parse_imp_spanish():
    verses, stats = bc.parse_imp(SPANISH_IMP)
    assert (stats.entries, stats.skipped_headings, stats.skipped_verse_zero,
            stats.skipped_empty, stats.verses) == (24, 3, 3, 0, 18)
    assert stats.recased_words == 3  # EN, UN, OH at the start of chapters
    assert verses["Luke 17:36"] == (
        "Dos estarán en el campo; el uno será tomado, y el otro dejado.")
    assert verses["Psalms 136:3"].startswith("AL SOL")  # not a first verse: left alone


def test_align_fixture():
    english, _ = bc.parse_imp(ENGLISH_IMP)
    spanish, _ = bc.parse_imp(SPANISH_IMP)
    pairs, stats = bc.align(english, spanish)
    assert stats.pairs == len(pairs) == 17
    assert stats.english_only == 2
    assert stats.english_only_examples == ["Genesis 1:4", "Tobit 1:1"]
    assert stats.spanish_only == 1
    assert stats.spanish_only_examples == ["Luke 17:36"]
    refs = [ref for ref, _, _ in pairs]
    assert refs == sorted(refs, key=bc.reference_sort_key)
    assert refs[:3] == ["Genesis 1:1", "Genesis 1:2", "Genesis 1:3"]
    assert refs[-1] == "Revelation 22:21"


def test_build_fixture_rows_and_counts(imp_files, tmp_path, capsys):
    english, spanish = imp_files
    output = tmp_path / "out" / "corpus.tsv.gz"
    assert bc.main(["--english-imp", str(english), "--spanish-imp", str(spanish),
                    "--output", str(output)]) == 0
    header, rows = read_rows(output)
    assert header == ("reference", "split", "english", "spanish")
    assert rows == EXPECTED_ROWS
    log = capsys.readouterr().out
    assert "english: 26 entries read, 19 verses kept" in log
    assert "english:   skipped 3 module/testament headings" in log
    assert "english:   skipped 3 verse-0 entries" in log
    assert "english:   skipped 1 verses empty after cleaning" in log
    assert "spanish: 24 entries read, 18 verses kept" in log
    assert "aligned: 17 references present and non-empty on both sides" in log
    assert "aligned:   2 references only in English" in log
    assert "aligned:   1 references only in Spanish" in log
    # Psalms 136:2 (train) repeats the English of 136:1 (dev); 136:3 (train) and
    # 136:27 (dev) repeat the Spanish of 136:8 (test)
    assert "split train: 12 by hash, 2 removed as duplicates of a held-out text, 10 kept" in log
    assert "split dev: 2 by hash, 1 removed as duplicates of a held-out text, 1 kept" in log
    assert "split test: 3 by hash, 0 removed as duplicates of a held-out text, 3 kept" in log
    assert "total: 14 pairs" in log


def test_build_is_byte_reproducible(imp_files, tmp_path):
    english, spanish = imp_files
    first, second = tmp_path / "a.tsv.gz", tmp_path / "b" / "c.tsv.gz"
    for output in (first, second):
        assert bc.main(["--english-imp", str(english), "--spanish-imp", str(spanish),
                        "--output", str(output)]) == 0
    data = first.read_bytes()
    assert data == second.read_bytes()
    assert data[:2] == b"\x1f\x8b"
    assert data[3] & 0x08 == 0          # no file name in the gzip header
    assert data[4:8] == b"\0\0\0\0"     # mtime 0
    rows = bc.build(ENGLISH_IMP, SPANISH_IMP, None, log=lambda line: None)
    assert gzip.decompress(data) == bc.tsv_bytes(rows)


def test_tsv_bytes_rejects_tabs_and_newlines():
    assert bc.tsv_bytes([("Genesis 1:1", "train", "a", "b")]) == (
        b"reference\tsplit\tenglish\tspanish\nGenesis 1:1\ttrain\ta\tb\n")
    for bad in ("a\tb", "a\nb", "a\rb"):
        with pytest.raises(ValueError, match=re.escape(
                f"Genesis 1:1: the english field contains a tab, carriage return or "
                f"newline: {bad!r}")):
            bc.tsv_bytes([("Genesis 1:1", "train", bad, "b")])
    with pytest.raises(ValueError, match=r"^John 3:16: the spanish field .*: 'b\\tc'$"):
        bc.tsv_bytes([("John 3:16", "train", "a", "b\tc")])


# --- splits -----------------------------------------------------------------


def test_split_of_is_a_fixed_function_of_the_reference():
    # zlib.crc32 is the same everywhere: these values must never change
    assert {ref: bc.split_of(ref) for ref in [
        "Genesis 1:1", "Genesis 2:12", "Psalms 136:1", "Psalms 136:8", "John 3:16",
        "John 3:5", "Matthew 5:10", "Revelation 22:21"]} == {
        "Genesis 1:1": "train", "Genesis 2:12": "test", "Psalms 136:1": "dev",
        "Psalms 136:8": "test", "John 3:16": "test", "John 3:5": "dev",
        "Matthew 5:10": "dev", "Revelation 22:21": "train"}
    refs = [f"Book {c}:{v}" for c in range(1, 101) for v in range(1, 101)]
    share = {name: sum(bc.split_of(r) == name for r in refs) / len(refs) for name in bc.SPLITS}
    assert 0.03 < share["test"] < 0.05 and 0.02 < share["dev"] < 0.04


def test_assign_splits_removes_texts_shared_with_held_out_splits():
    fixed = {"A 1:1": "test", "A 1:2": "dev", "A 1:3": "train", "A 1:4": "train",
             "A 1:5": "dev", "A 1:6": "train", "A 1:7": "test", "A 1:8": "train"}
    pairs = [
        ("A 1:1", "Same English.", "Uno."),
        ("A 1:2", "Other.", "Dos."),
        ("A 1:3", "same  ENGLISH.", "Tres."),      # English as in test (case, spaces)
        ("A 1:4", "Four.", "Dos."),               # Spanish as in dev
        ("A 1:5", "Five.", "UNO."),               # Spanish as in test
        ("A 1:6", "Six.", "Seis."),
        ("A 1:7", "Same English.", "Siete."),     # duplicate inside test: kept
        ("A 1:8", "Six.", "Ocho."),               # duplicate inside train: kept
    ]
    rows, stats = bc.assign_splits(pairs, split_fn=fixed.__getitem__)
    assert [(ref, split) for ref, split, _, _ in rows] == [
        ("A 1:1", "test"), ("A 1:2", "dev"), ("A 1:6", "train"), ("A 1:7", "test"),
        ("A 1:8", "train")]
    assert stats.before == {"test": 2, "dev": 2, "train": 4}
    assert stats.removed == {"train": 2, "dev": 1}
    assert stats.after == {"test": 2, "dev": 1, "train": 2}


# --- misaligned verses --------------------------------------------------------


def synthetic_pairs():
    """Pairs of made-up word-for-word translations, in 10 chapters of 20 verses."""
    rng = random.Random(0)
    pairs = []
    for chapter in range(1, 11):
        for verse in range(1, 21):
            ids = rng.sample(range(300), 6)
            pairs.append((f"Genesis {chapter}:{verse}",
                          " ".join(f"eng{i:03d}" for i in ids),
                          " ".join(f"spa{i:03d}" for i in ids)))
    return pairs


def test_find_misaligned_finds_a_shifted_chapter():
    pairs = synthetic_pairs()
    assert bc.find_misaligned(pairs) == []
    # chapter 5 of the Spanish starts one verse early, as the Reina-Valera's
    # Numbers 13 does, and its last verse holds two
    shifted = list(pairs)
    start = 4 * 20
    for k in range(20):
        ref, en, _ = pairs[start + k]
        es = pairs[start + k - 1][2]
        if k == 19:
            es = es + " " + pairs[start + k][2]
        shifted[start + k] = (ref, en, es)
    found = bc.find_misaligned(shifted)
    assert found == [f"Genesis 5:{v}" for v in range(1, 21)]
    kept, misaligned, uneven = bc.filter_misaligned(shifted)
    assert misaligned == found and uneven == []
    assert len(kept) == len(pairs) - 20


def test_length_outliers():
    pairs = [("A 1:1", "All the saints greet you.", "La gracia del Señor Jesucristo, y el amor "
              "de Dios, y la participación del Espíritu Santo sea con vosotros todos."),
             ("A 1:2", "Jesus wept.", "Y lloró Jesús."),
             ("A 1:3", "Short.", "Un poco más largo.")]
    assert bc.length_outliers(pairs) == ["A 1:1"]


# --- command line -----------------------------------------------------------


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bc.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--output", "--english-module", "--spanish-module", "--english-imp",
                   "--spanish-imp", "--mod2imp", "--keep-misaligned"):
        assert option in out
    assert bc.DEFAULT_ENGLISH_MODULE == "engWEB2015eb"
    assert bc.DEFAULT_SPANISH_MODULE == "spaRV1909eb"


def test_missing_mod2imp_is_reported(tmp_path, capsys):
    code = bc.main(["--mod2imp", str(tmp_path / "no-such-mod2imp"),
                    "--output", str(tmp_path / "x.tsv.gz")])
    assert code == 1
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "x.tsv.gz").exists()


# --- the shipped corpus -------------------------------------------------------


@pytest.fixture(scope="module")
def shipped():
    assert SHIPPED.is_file(), f"missing {SHIPPED}: rebuild it, see its README.md"
    return read_rows(SHIPPED)


def test_shipped_corpus_shape(shipped):
    header, rows = shipped
    assert header == bc.HEADER
    assert len(rows) >= 30_000
    assert all(len(row) == 4 and all(row) for row in rows)
    counts = {name: sum(1 for row in rows if row[1] == name) for name in bc.SPLITS}
    assert set(row[1] for row in rows) == set(bc.SPLITS)
    assert counts["test"] >= 1_000
    assert counts["dev"] >= 500
    refs = [row[0] for row in rows]
    assert len(set(refs)) == len(refs)
    assert refs == sorted(refs, key=bc.reference_sort_key)
    assert refs[0] == "Genesis 1:1" and refs[-1] == "Revelation 22:21"


def test_shipped_corpus_splits_follow_the_hash_and_are_disjoint(shipped):
    _, rows = shipped
    texts = {name: set() for name in bc.SPLITS}
    for ref, split, english, spanish in rows:
        assert split == bc.split_of(ref), ref
        texts[split].add(("en", bc.dedup_key(english)))
        texts[split].add(("es", bc.dedup_key(spanish)))
    assert not texts["train"] & texts["dev"]
    assert not texts["train"] & texts["test"]
    assert not texts["dev"] & texts["test"]


def test_shipped_corpus_text_is_clean(shipped):
    _, rows = shipped
    for ref, _, english, spanish in rows:
        for text in (english, spanish):
            assert text == unicodedata.normalize("NFC", text), ref
            assert text == text.strip() and "  " not in text, ref
            assert not any(ch in text for ch in "<>&\t\r\n\x01\x02\x03"), ref
            for mark in [",", ".", ";", ":", "!", "?", ")", "»", "”"]:
                assert " " + mark not in text, (ref, mark)
            for mark in ["(", "¿", "¡", "«", "“"]:
                assert mark + " " not in text, (ref, mark)
    by_ref = {row[0]: row for row in rows}
    assert by_ref["Genesis 1:1"][2:] == (
        "In the beginning, God created the heavens and the earth.",
        "En el principio crió Dios los cielos y la tierra.")
    assert by_ref["Matthew 3:15"][2].endswith("all righteousness.” Then he allowed him.")
    assert by_ref["Genesis 27:4"][3].startswith("Y hazme un guisado, como yo gusto, y tráemelo,")
    assert "Numbers 13:2" not in by_ref  # shifted by a verse in the Reina-Valera module
