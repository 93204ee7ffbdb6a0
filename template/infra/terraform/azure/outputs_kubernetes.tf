# Read by `make k8s-credentials` and `make k8s-manifests` (serving = kubernetes).

output "cluster_name" {
  description = "AKS cluster the service runs on (az aks get-credentials --name)."
  value       = var.cluster_name
}

output "cluster_resource_group" {
  description = "Resource group of the AKS cluster (az aks get-credentials --resource-group)."
  value       = var.cluster_resource_group
}

output "kubernetes_namespace" {
  description = "Namespace of this environment (deploy/kubernetes/<environment>/kustomization.yaml)."
  value       = local.kubernetes_namespace
}

output "server_workload_identity" {
  description = "Client ID of the service's managed identity: the azure.workload.identity/client-id annotation of its service account."
  value       = azurerm_user_assigned_identity.runtime.client_id
}

output "batch_workload_identity" {
  description = "Client ID of the batch CronJob's managed identity: the azure.workload.identity/client-id annotation of its service account."
  value       = azurerm_user_assigned_identity.batch.client_id
}

output "batch_input_uri" {
  description = "BATCH_INPUT_URI of the batch CronJob (in storage_account)."
  value       = var.batch_input_uri
}

output "batch_output_uri" {
  description = "BATCH_OUTPUT_URI of the batch CronJob (in storage_account)."
  value       = var.batch_output_uri
}

output "service_domain" {
  description = "Public host of the Ingress (empty: make k8s-manifests refuses to build)."
  value       = var.service_domain
}

output "ingress_class" {
  description = "IngressClass of the service's Ingress (make k8s-manifests sets it): internal unless chosen otherwise."
  value       = var.ingress_class
}

output "batch_engine" {
  description = "Where the batch job runs: container (the CronJob) or spark (make k8s-manifests adds deploy/kubernetes/components/spark)."
  value       = var.batch_engine
}
