"""Video captioning: the generated clips data set (shapes appear, move, turn,
disappear), attention over frames against a mean-pooled baseline, temporal
localization, and a SavedModel taking frames, animated GIFs or features."""
