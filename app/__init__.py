"""lstm-serve: REST inference for LSTM-family models."""

__version__ = "0.1.0"
