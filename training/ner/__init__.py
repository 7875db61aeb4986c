"""Named-entity recognition: BiLSTM-CRF on CoNLL-2003 (`python -m training.ner --help`)."""
