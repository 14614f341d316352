"""Library output a user cannot act on, kept out of engine.log and job.log: the engine and job
processes silence it at the source before the libraries load, and the UI drops it from logs written
before it was silenced. Genuine warnings of the same libraries still get through."""

from __future__ import annotations

import logging
import re
import warnings

# logger name -> how the message starts. bitsandbytes logs this one at import, on every run, on CPUs
# with AVX-512 BF16 when the optional `kernels` package (a faster 4-bit CPU kernel fetched from the
# Hugging Face hub) is missing; bitsandbytes works without it, and the engine never reaches a hub.
LIBRARY_NOISE = {
    "bitsandbytes.backends.cpu.ops": "Failed to load CPU gemm_4bit_forward from kernels-community",
}
# A message on a line of its own goes with its line; one that a print ran into (stderr and stdout
# share the log) goes to the end of that line.
_NOISE_TEXT = re.compile("|".join(rf"(?m)^{re.escape(start)}[^\n]*\n?|{re.escape(start)}[^\n]*"
                                  for start in LIBRARY_NOISE.values()))


def silence_library_noise() -> None:
    """Call in an engine or job process before torch, transformers or bitsandbytes are imported.
    Also drops library deprecation notices (transformers' renamed arguments and the like), which
    fill the log tail the UI shows with nothing a user can change."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    for name, start in LIBRARY_NOISE.items():
        logging.getLogger(name).addFilter(lambda record, start=start: not record.getMessage().startswith(start))


def without_library_noise(text: str) -> str:
    """A log's text without the LIBRARY_NOISE messages (logs written before they were silenced)."""
    return _NOISE_TEXT.sub("", text)
