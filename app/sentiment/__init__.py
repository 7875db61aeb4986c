"""Text classification (the shipped model: IMDB sentiment), served at POST /sentiment."""

from app.sentiment.routes import router
from app.sentiment.task import SentimentTask as Task

__all__ = ["Task", "router"]
