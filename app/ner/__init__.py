"""Named-entity recognition: BiLSTM-CRF emissions from the bundle, CRF decoding in numpy."""

from app.ner.routes import router
from app.ner.task import NerTask as Task

__all__ = ["Task", "router"]
