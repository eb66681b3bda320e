"""Generates the ONNX models the C++ tests use, into the folder given as argv[1]."""
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
