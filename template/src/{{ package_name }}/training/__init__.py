"""What the pipeline stages train with: estimators and baselines per task, metrics, ONNX export, provenance.

scikit-learn, skl2onnx and joblib live here and in stages/; serving and batch never import this package.
"""
