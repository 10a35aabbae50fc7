"""`python -m keras_attention.serving --model_base_path DIR ...`"""

import sys

from keras_attention.serving.server import main

if __name__ == "__main__":
    sys.exit(main())
