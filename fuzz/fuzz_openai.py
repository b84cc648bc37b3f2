"""atheris target: the OpenAI Chat Completions decoder.

Run ``python fuzz/fuzz_openai.py [CORPUS_DIR] [libFuzzer args]``; see README.md.
"""

import sys

from _harness import main

if __name__ == "__main__":
    sys.exit(main("openai"))
