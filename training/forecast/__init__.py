"""Global LSTM forecaster: data, baselines, model, training (`python -m training.forecast`)."""
