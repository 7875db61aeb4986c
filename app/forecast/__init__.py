"""Forecasting: a global LSTM quantile regressor served at POST /forecast."""

from app.forecast.routes import router
from app.forecast.task import ForecastTask as Task

__all__ = ["Task", "router"]
