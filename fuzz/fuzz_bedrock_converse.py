"""atheris target: the Bedrock Converse (non-streaming) decoder.

Run ``python fuzz/fuzz_bedrock_converse.py [CORPUS_DIR] [libFuzzer args]``; see README.md.
"""

import sys

from _harness import main

if __name__ == "__main__":
    sys.exit(main("bedrock_converse"))
