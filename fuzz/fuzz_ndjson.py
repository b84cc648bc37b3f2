"""atheris target: the NDJSON framer.

Run ``python fuzz/fuzz_ndjson.py [CORPUS_DIR] [libFuzzer args]``; see README.md.
"""

import sys

from _harness import main

if __name__ == "__main__":
    sys.exit(main("ndjson"))
