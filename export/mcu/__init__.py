"""fashionnet's microcontroller kit: files `fashionnet export --formats ...,mcu` copies into RUN/export/mcu/
beside the generated model_data.h and model_data.cc (fashionnet/publish/mcu.py)."""

from pathlib import Path

KIT_DIR = Path(__file__).parent
KIT_FILES = ("fashionnet_classify.cc", "README.md")
