"""trm-tvm: Tiny Recursive Models from PyTorch to quantised integer code on microcontrollers."""
__version__ = "0.1.0"
