"""atheris target: the Anthropic Messages decoder.

Run ``python fuzz/fuzz_anthropic.py [CORPUS_DIR] [libFuzzer args]``; see README.md.
"""

import sys

from _harness import main

if __name__ == "__main__":
    sys.exit(main("anthropic"))
