"""atheris target: the SSE framer.

Run ``python fuzz/fuzz_sse.py [CORPUS_DIR] [libFuzzer args]``; see README.md.
"""

import sys

from _harness import main

if __name__ == "__main__":
    sys.exit(main("sse"))
