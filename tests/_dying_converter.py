"""A converter for the worker-pool tests: the process dies on files named
``die*.onnx`` (as on a crash in a native library), else converts as usual."""

import os
from pathlib import Path


def convert(path, input_shape=None, unknown_ops="error"):
    if Path(path).name.startswith("die"):
        os._exit(3)
    from gennape.transfer.predict import convert_file

    return convert_file(path, input_shape, unknown_ops)
