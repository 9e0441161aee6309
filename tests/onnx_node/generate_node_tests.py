"""Writes ONNX's own backend node tests (model.onnx + test_data_set_*/{input,output}_*.pb) into
the folder given as the first argument, using Debian's python3-onnx.

ONNX 1.12's test generators still use numpy aliases that numpy 1.24 removed (np.float, np.int,
np.bool, np.object, np.complex); they are restored before the generators are imported.
"""
import sys

import numpy as np

for alias, builtin in [("float", float), ("int", int), ("bool", bool), ("object", object), ("complex", complex)]:
    if not hasattr(np, alias):
        setattr(np, alias, builtin)

from onnx.backend.test import cmd_tools  # noqa: E402

sys.argv = ["generate_node_tests", "generate-data", "-o", sys.argv[1]]
cmd_tools.main()
