"""DeepSeek2API: an OpenAI-compatible gateway in front of DeepSeek's web chat."""

__version__ = "0.3.0"
