"""The scoring core: the feature matrix, the ONNX model and its task-specific outputs.

numpy and onnxruntime only, so the service and batch scoring run the model without any training dependency.
Imports only the contract layer (contract, expressions, metadata) below it.
"""
