"""atheris target: the Cohere v2 Chat decoder.

Run ``python fuzz/fuzz_cohere.py [CORPUS_DIR] [libFuzzer args]``; see README.md.
"""

import sys

from _harness import main

if __name__ == "__main__":
    sys.exit(main("cohere"))
