# orchestrator = airflow: Apache Airflow 3 on the organisation's AKS cluster (the official Helm chart, installed and
# upgraded by the platform team: Microsoft's managed Airflow in Data Factory is a preview of Airflow 2 only) starts
# each stage as a pod of the pipeline image (`python orchestration/pipeline.py run <stage>`), so training runs on the
# pod's requests/limits (pipeline_cpu / pipeline_memory), not on the CI runner.
#
# This stack owns the project's side, and nothing of the shared cluster:
#   pipeline identity   a managed identity that the pods' service account <project>-pipeline of airflow_namespace
#                       becomes through Workload Identity; it reads and writes the data container (the run store
#                       is az://data/pipeline) and pulls nothing else
#   registry            the cluster's kubelet pulls the pipeline image from this environment's registry
#   airflow_helm_values the DAG's Airflow Variables (store, namespace, the pods' resources) as Helm values for the
#                       chart's release, so they come from this stack: one place
# Until airflow_cluster_name is set, only the identity exists.

variable "airflow_cluster_name" {
  description = "Name of the existing AKS cluster Airflow runs on (envs/<environment>.tfvars); empty until it is known."
  type        = string
  default     = ""

  validation {
    condition     = var.airflow_cluster_name == "" || can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$", var.airflow_cluster_name))
    error_message = "airflow_cluster_name must be the name of an existing AKS cluster."
  }
}

variable "airflow_cluster_resource_group" {
  description = "Resource group of the AKS cluster Airflow runs on; needed with airflow_cluster_name."
  type        = string
  default     = ""
}

variable "airflow_namespace" {
  description = "Kubernetes namespace of the Airflow release, where the stage pods run."
  type        = string
  default     = "airflow"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.airflow_namespace))
    error_message = "airflow_namespace must be a Kubernetes namespace name."
  }
}

variable "pipeline_image" {
  description = "The pipeline image by digest (<registry>/<project>@sha256:..., built by the Retrain workflow from Dockerfile.pipeline); each run may name its own."
  type        = string
  default     = ""

  validation {
    condition     = var.pipeline_image == "" || can(regex("^[^@]+@sha256:[a-f0-9]{64}$", var.pipeline_image))
    error_message = "pipeline_image must be pinned by digest: <repository>@sha256:<64 hex digits>."
  }
}

variable "pipeline_cpu" {
  description = "CPU request and limit of a pipeline stage pod: the compute training runs on."
  type        = string
  default     = "2"
}

variable "pipeline_memory" {
  description = "Memory request and limit of a pipeline stage pod."
  type        = string
  default     = "8Gi"
}

locals {
  airflow_cluster_enabled  = var.airflow_cluster_name != ""
  pipeline_service_account = "${var.project}-pipeline"
  pipeline_store           = "az://${azurerm_storage_container.main["data"].name}/pipeline"
  # The DAG's Airflow Variables (training_pipeline.py reads them as var.value.* and AIRFLOW_VAR_PIPELINE_RESOURCES).
  airflow_variables = {
    pipeline_store     = local.pipeline_store
    pipeline_namespace = var.airflow_namespace
    pipeline_image     = var.pipeline_image
    pipeline_resources = jsonencode({ cpu = var.pipeline_cpu, memory = var.pipeline_memory })
    # adlfs resolves az://<container>/... in this account, with the pod's workload identity
    pipeline_storage_account = azurerm_storage_account.main.name
  }
}

data "azurerm_kubernetes_cluster" "airflow" {
  count = local.airflow_cluster_enabled ? 1 : 0

  name                = var.airflow_cluster_name
  resource_group_name = var.airflow_cluster_resource_group

  lifecycle {
    postcondition {
      condition     = self.oidc_issuer_enabled && self.workload_identity_enabled
      error_message = "AKS cluster ${var.airflow_cluster_name} needs the OIDC issuer and Workload Identity enabled (az aks update --enable-oidc-issuer --enable-workload-identity)."
    }
  }
}

resource "azurerm_user_assigned_identity" "pipeline" {
  name                = "${local.name}-pipeline"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

# Workload Identity: the managed identity trusts the pipeline pods' service account of the Airflow namespace only.
resource "azurerm_federated_identity_credential" "pipeline" {
  count = local.airflow_cluster_enabled ? 1 : 0

  name                = "aks-${var.airflow_namespace}-${local.pipeline_service_account}"
  resource_group_name = azurerm_resource_group.main.name
  parent_id           = azurerm_user_assigned_identity.pipeline.id
  issuer              = data.azurerm_kubernetes_cluster.airflow[0].oidc_issuer_url
  subject             = "system:serviceaccount:${var.airflow_namespace}:${local.pipeline_service_account}"
  audience            = ["api://AzureADTokenExchange"]
}

# The stages read and write the run store in the data container.
resource "azurerm_role_assignment" "pipeline_data_contributor" {
  scope                = azurerm_storage_container.main["data"].id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.pipeline.principal_id
}

# The cluster's kubelet pulls the pipeline image from this environment's registry.
resource "azurerm_role_assignment" "airflow_kubelet_acr_pull" {
  count = local.airflow_cluster_enabled ? 1 : 0

  scope                = azurerm_container_registry.main.id
  role_definition_name = "AcrPull"
  principal_id         = data.azurerm_kubernetes_cluster.airflow[0].kubelet_identity[0].object_id
}

output "pipeline_client_id" {
  description = "Client ID of the pipeline identity: the azure.workload.identity/client-id annotation of the <project>-pipeline service account."
  value       = azurerm_user_assigned_identity.pipeline.client_id
}

output "airflow_helm_values" {
  description = "Helm values for the Airflow chart's release: the DAG's Airflow Variables and the pipeline service account, from this stack."
  value = yamlencode({
    env = [for name, value in local.airflow_variables : { name = "AIRFLOW_VAR_${upper(name)}", value = value }]
    extraObjects = [{
      apiVersion = "v1"
      kind       = "ServiceAccount"
      metadata = {
        name        = local.pipeline_service_account
        namespace   = var.airflow_namespace
        annotations = { "azure.workload.identity/client-id" = azurerm_user_assigned_identity.pipeline.client_id }
      }
    }]
  })
}

output "pipeline_store" {
  description = "The pipeline's run store (orchestration/pipeline.py run --store); the stages reach it with the pipeline identity."
  value       = local.pipeline_store
}
