"""Training core shared by the translation, image and video captioning scripts."""
