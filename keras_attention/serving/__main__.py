"""`python -m keras_attention.serving --model_base_path DIR ...`"""

import sys

from keras_attention.serving.server import main

sys.exit(main())
