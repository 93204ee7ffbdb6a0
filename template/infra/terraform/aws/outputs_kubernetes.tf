# Read by `make k8s-credentials` and `make k8s-manifests` (serving = kubernetes).

output "cluster_name" {
  description = "EKS cluster the service runs on (aws eks update-kubeconfig --name)."
  value       = var.cluster_name
}

output "kubernetes_namespace" {
  description = "Namespace of this environment (deploy/kubernetes/<environment>/kustomization.yaml)."
  value       = local.kubernetes_namespace
}

output "server_workload_identity" {
  description = "IAM role of the service's pods: the eks.amazonaws.com/role-arn annotation of its service account (empty without cluster_name)."
  value       = try(aws_iam_role.workload["server"].arn, "")
}

output "batch_workload_identity" {
  description = "IAM role of the batch CronJob's pods: the eks.amazonaws.com/role-arn annotation of its service account."
  value       = try(aws_iam_role.workload["batch"].arn, "")
}

output "batch_input_uri" {
  description = "BATCH_INPUT_URI of the batch CronJob."
  value       = "s3://${aws_s3_bucket.project["data"].id}/${var.batch_input_key}"
}

output "batch_output_uri" {
  description = "BATCH_OUTPUT_URI of the batch CronJob."
  value       = "s3://${aws_s3_bucket.project["data"].id}/${var.batch_output_key}"
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
