"""Serving exported models: a REST server that speaks TensorFlow Serving's
API (`python -m keras_attention.serving`, `keras-attention serve`).

It runs SavedModels with TensorFlow alone; it imports no layer and no
training code. Its web stack is the optional extra `pip install
"keras-attention-kit[serve]"`.
"""
