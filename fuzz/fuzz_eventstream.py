"""atheris target: the AWS event stream framer.

Run ``python fuzz/fuzz_eventstream.py [CORPUS_DIR] [libFuzzer args]``; see README.md.
"""

import sys

from _harness import main

if __name__ == "__main__":
    sys.exit(main("eventstream"))
