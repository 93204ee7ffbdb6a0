"""The online prediction service: a FastAPI app that serves the champion model over HTTP.

`python -m <package>.serving` runs it with uvicorn; `python -m <package>.serving.client` calls it.
"""
