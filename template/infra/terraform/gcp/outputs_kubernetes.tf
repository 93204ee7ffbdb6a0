# Read by `make k8s-credentials` and `make k8s-manifests` (serving = kubernetes).

output "cluster_name" {
  description = "GKE cluster the service runs on (gcloud container clusters get-credentials)."
  value       = var.cluster_name
}

output "cluster_location" {
  description = "Region or zone of the cluster."
  value       = local.cluster_location
}

output "cluster_project" {
  description = "Project of the cluster."
  value       = local.cluster_project
}

output "kubernetes_namespace" {
  description = "Namespace of this environment (deploy/kubernetes/<environment>/kustomization.yaml)."
  value       = local.kubernetes_namespace
}

output "server_workload_identity" {
  description = "Google service account of the service's pods: the iam.gke.io/gcp-service-account annotation of its service account."
  value       = google_service_account.runtime.email
}

output "batch_workload_identity" {
  description = "Google service account of the batch CronJob's pods: the iam.gke.io/gcp-service-account annotation of its service account."
  value       = google_service_account.batch.email
}

output "batch_input_uri" {
  description = "BATCH_INPUT_URI of the batch CronJob."
  value       = "gs://${google_storage_bucket.this["data"].name}/${var.batch_input_path}"
}

output "batch_output_uri" {
  description = "BATCH_OUTPUT_URI of the batch CronJob."
  value       = "gs://${google_storage_bucket.this["data"].name}/${var.batch_output_path}"
}

output "service_domain" {
  description = "Public host of the Ingress (empty: make k8s-manifests refuses to build)."
  value       = var.service_domain
}

output "ingress_class" {
  description = "IngressClass of the service's Ingress (make k8s-manifests sets it): internal unless chosen otherwise."
  value       = var.ingress_class
}

output "inference_log_uri" {
  description = "Where the service's log shipper uploads the sampled inference log (INFERENCE_LOG_URI of the server's ConfigMap)."
  value       = local.inference_log_uri
}

output "batch_engine" {
  description = "Where the batch job runs: container (the CronJob) or spark (make k8s-manifests adds deploy/kubernetes/components/spark)."
  value       = var.batch_engine
}
