"""atheris target: the OpenAI Responses decoder.

Run ``python fuzz/fuzz_openai_responses.py [CORPUS_DIR] [libFuzzer args]``; see README.md.
"""

import sys

from _harness import main

if __name__ == "__main__":
    sys.exit(main("openai_responses"))
