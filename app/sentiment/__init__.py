"""Sentiment: a BiLSTM trained on IMDB, served at POST /sentiment."""

from app.sentiment.routes import router
from app.sentiment.task import SentimentTask as Task

__all__ = ["Task", "router"]
