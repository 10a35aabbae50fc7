"""Translation's attention views (`training.translation.evaluation`): one
PNG and one terminal view per example, a left-out unknown word labelled."""

import numpy as np


def test_views_label_a_left_out_word_and_skip_empty_outputs(tmp_path):
    from training.translation.evaluation import draw_examples

    attention = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.0, 0.0, 0.0]], "float32")
    results = [
        {"tokens": np.array([b"el", b"", b"pad"]), "length": np.array(2),
         "attention": attention, "source_tokens": np.array([b"the", b"bdellium", b""])},
        {"tokens": np.array([b""]), "length": np.array(0), "attention": attention[:1],
         "source_tokens": np.array([b"x"])},
    ]
    paths, views = draw_examples(results, ["The bdellium", "x"], str(tmp_path), count=5)
    assert [p.endswith("attention_0.png") for p in paths] == [True]
    with open(paths[0], "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    lines = views[0].splitlines()
    assert len(views) == 1 and len(lines) == 2
    assert lines[0].split()[:3] == ["el", "<-", "the"]
    assert lines[1].split()[:3] == ["[UNK]", "<-", "bdellium"]
