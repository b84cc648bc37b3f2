"""atheris target: the Gemini SSE decoder.

Run ``python fuzz/fuzz_gemini.py [CORPUS_DIR] [libFuzzer args]``; see README.md.
"""

import sys

from _harness import main

if __name__ == "__main__":
    sys.exit(main("gemini"))
