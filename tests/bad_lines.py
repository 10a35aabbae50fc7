"""The bad-line check both caption data loaders share (an image or a clip
folder with an `name,caption` file)."""

import re

import pytest


def assert_bad_line_named_then_skipped(folder, header, good_lines, line, write_bad_source,
                                       pattern, load, error, named):
    """Puts `line` as line 4 of a captions file (after `header` and two good
    lines); loading must raise `error` naming the file and line, matching
    `pattern` (and the source's path when `named`); with
    `skip_bad_lines=True` it is the one line skipped.

    `load(folder, captions_path, **keywords) -> corpus`; `write_bad_source(path)`
    writes the line's bad source, or is None. Returns the skipping corpus.
    """
    source_name = line.split(",")[0]
    if write_bad_source is not None:
        write_bad_source(folder / source_name)
    captions = folder.parent / "captions.txt"
    captions.write_text("".join(f"{row}\n" for row in
                                [header, *good_lines[:2], line, *good_lines[2:]]),
                        encoding="utf-8")
    with pytest.raises(error) as raised:
        load(folder, str(captions))
    message = str(raised.value)
    assert message.startswith(f"{captions}:4: "), message
    assert re.search(pattern, message), message
    if named:
        assert str(folder / source_name) in message
    corpus = load(folder, str(captions), skip_bad_lines=True)
    assert corpus.skipped == 1
    assert "1 bad lines skipped" in corpus.summary()
    return corpus
