"""Video captioning: the generated clips data set (shapes appear, move, turn, disappear)."""
