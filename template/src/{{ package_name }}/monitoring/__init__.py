"""Operating the model: drift of inputs and predictions against training, Prometheus rules from slo.yaml."""
