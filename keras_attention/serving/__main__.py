"""`python -m keras_attention.serving --model_base_path DIR ...`"""

import sys

from keras_attention import tensorflow_alone
from keras_attention.serving.server import main

if __name__ == "__main__":
    tensorflow_alone.prepare()
    # Without it, argparse would name the program `__main__.py` in its usage line.
    sys.exit(main(prog="python -m keras_attention.serving"))
