# orchestrator = kubeflow: the pipeline's pods on the Kubeflow Pipelines installation of the organisation's AKS
# cluster (README.md, "Running on Kubeflow"). The cluster and Kubeflow are the organisation's; this project owns the
# managed identity its pipeline pods use through Workload Identity: blobs under pipeline/ of the data container (the
# run store), nothing else. The identity trusts one Kubernetes service account, <project>-pipeline in the pipeline's
# Kubeflow profile (namespace), through the cluster's OIDC issuer given as a variable (the cluster need not be this
# project's serving cluster). The profile and that service account (with the azure.workload.identity/client-id
# annotation) are applied by a cluster admin from orchestration/kubeflow/profile.yaml: Kubeflow's Profile controller
# owns the namespace, so Terraform does not. The nodes pull the image with the cluster's kubelet identity (AcrPull).

variable "kubeflow_oidc_issuer_url" {
  description = "OIDC issuer URL of the AKS cluster Kubeflow Pipelines runs on (az aks show --query oidcIssuerProfile.issuerUrl); empty: no federated credential yet."
  type        = string
  default     = ""

  validation {
    condition     = var.kubeflow_oidc_issuer_url == "" || startswith(var.kubeflow_oidc_issuer_url, "https://")
    error_message = "kubeflow_oidc_issuer_url must be the cluster's https:// OIDC issuer URL."
  }
}

variable "kubeflow_namespace" {
  description = "The Kubeflow profile (namespace) the pipeline runs in; empty: <project>-<environment>-pipeline."
  type        = string
  default     = ""
}

locals {
  kubeflow_namespace       = var.kubeflow_namespace != "" ? var.kubeflow_namespace : "${local.name}-pipeline"
  kubeflow_service_account = "${var.project}-pipeline"
  pipeline_prefix          = "pipeline/"
  blob_action              = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
}

resource "azurerm_user_assigned_identity" "pipeline" {
  name                = "${local.name}-pipeline"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "pipeline" {
  count = var.kubeflow_oidc_issuer_url != "" ? 1 : 0

  name                = "kubeflow-${local.kubeflow_namespace}-${local.kubeflow_service_account}"
  resource_group_name = azurerm_resource_group.main.name
  parent_id           = azurerm_user_assigned_identity.pipeline.id
  issuer              = var.kubeflow_oidc_issuer_url
  subject             = "system:serviceaccount:${local.kubeflow_namespace}:${local.kubeflow_service_account}"
  audience            = ["api://AzureADTokenExchange"]
}

# orchestration/pipeline.py run reads and replaces the run's blobs under pipeline/ (runs/<run_id>/, persist/): the
# assignment's condition (ABAC) limits every blob action to that prefix of the data container.
resource "azurerm_role_assignment" "pipeline_run_store" {
  scope                = azurerm_storage_container.main["data"].id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.pipeline.principal_id
  principal_type       = "ServicePrincipal"
  condition_version    = "2.0"
  condition            = <<-EOT
    (
      (
        !(ActionMatches{'${local.blob_action}/read'} AND NOT SubOperationMatches{'Blob.List'})
        AND !(ActionMatches{'${local.blob_action}/write'})
        AND !(ActionMatches{'${local.blob_action}/add/action'})
        AND !(ActionMatches{'${local.blob_action}/delete'})
      )
      OR
      (
        @Resource[${local.blob_action}:path] StringStartsWith '${local.pipeline_prefix}'
      )
    )
    AND
    (
      (
        !(ActionMatches{'${local.blob_action}/read'} AND SubOperationMatches{'Blob.List'})
      )
      OR
      (
        @Request[${local.blob_action}:prefix] StringStartsWith '${local.pipeline_prefix}'
      )
    )
  EOT
}

output "pipeline_identity_client_id" {
  description = "Client ID of the Kubeflow pipeline's managed identity (the azure.workload.identity/client-id annotation of orchestration/kubeflow/profile.yaml's service account)."
  value       = azurerm_user_assigned_identity.pipeline.client_id
}

output "pipeline_store" {
  description = "Run store of the Kubeflow pipeline (PIPELINE_STORE of submit.py)."
  value       = "az://${azurerm_storage_container.main["data"].name}/${trimsuffix(local.pipeline_prefix, "/")}"
}
