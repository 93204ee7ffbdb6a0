"""The pipeline, one module per DVC stage (dvc.yaml): validate -> features -> train -> evaluate -> gate.

Each runs as `python -m <package>.stages.<stage>`; its functions take frames and typed params, so an
orchestrator can drive them without DVC.
"""
