# serving = kubernetes: the service's metrics are scraped inside the cluster (deploy/kubernetes/base/podmonitor.yaml)
# and alerted on by the Prometheus rules of monitoring/; the cluster's own Azure Monitor charts belong to its owners.
# The environment's dashboard therefore shows the storage charts only.
locals {
  serving_charts = []
}
