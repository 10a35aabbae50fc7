"""Text recognition: attention reading a line of text in an image, one
character at a time (the attention-OCR model of Wojna et al. 2017)."""
