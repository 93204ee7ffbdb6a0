# serving = kubernetes: the service and the batch CronJob run on the organisation's existing AKS cluster (its name is
# var.cluster_name; organisations share clusters, so this stack never creates one). The manifests are in
# deploy/kubernetes/ and CD applies them (`make deploy`); this file holds the cloud side: Azure Workload Identity
# federates exactly one Kubernetes service account of this environment's namespace with each managed identity (the
# service as the runtime identity of identity.tf, which reads the model container; the batch job as its own), the
# cluster's kubelet pulls from this environment's registry, and the ci identity may fetch the cluster's credentials
# and edit this namespace only (Azure RBAC for Kubernetes authorization). Until cluster_name is set the first apply
# creates the shared resources only, like the other serving modes before their first image; deploying needs it.

variable "cluster_name" {
  description = "Name of the existing AKS cluster the service runs on (envs/<environment>.tfvars); empty until it is known."
  type        = string
  default     = ""

  validation {
    condition     = var.cluster_name == "" || can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$", var.cluster_name))
    error_message = "cluster_name must be the name of an existing AKS cluster."
  }
}

variable "cluster_resource_group" {
  description = "Resource group of the AKS cluster (envs/<environment>.tfvars); needed with cluster_name."
  type        = string
  default     = ""

  validation {
    condition     = var.cluster_resource_group == "" || can(regex("^[-\\w.()]{1,90}$", var.cluster_resource_group))
    error_message = "cluster_resource_group must be the resource group of the AKS cluster."
  }
}

variable "cluster_subnet_ids" {
  description = "Subnets of the cluster's nodes (with the Microsoft.Storage and Microsoft.KeyVault service endpoints) that the storage account and key vault firewalls admit."
  type        = list(string)
  default     = []
}

variable "grant_ci_cluster_access" {
  description = "Let the ci identity fetch the cluster's credentials and edit this environment's namespace (needs Azure RBAC for Kubernetes authorization). False when the platform team grants cluster access itself."
  type        = bool
  default     = true
}

variable "ingress_class" {
  description = "IngressClass of the service's Ingress. The cluster's internal controller by default (nginx-internal: a load balancer reachable only from the organisation's network); a public class (e.g. nginx) is an explicit choice (docs/security.md)."
  type        = string
  default     = "nginx-internal"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.ingress_class))
    error_message = "ingress_class must be the name of an IngressClass (lowercase letters, digits and hyphens)."
  }
}

variable "service_domain" {
  description = "Public DNS name of the service: the Ingress host (make k8s-manifests); its certificate is the Secret <project>-tls."
  type        = string
  default     = ""
}

variable "batch_engine" {
  description = "Where batch scoring runs: container (the CronJob, streamed) or spark (the Spark Operator on the cluster, deploy/kubernetes/components/spark)."
  type        = string
  default     = "container"

  validation {
    condition     = contains(["container", "spark"], var.batch_engine)
    error_message = "batch_engine is container or spark."
  }
}

variable "batch_input_uri" {
  description = "BATCH_INPUT_URI of the batch CronJob: az://<container>/<path> in this environment's storage account."
  type        = string
  default     = "az://data/batch/input/records.csv"
}

variable "batch_output_uri" {
  description = "BATCH_OUTPUT_URI of the batch CronJob (batch output is deleted after 90 days, see storage.tf)."
  type        = string
  default     = "az://data/batch/output/predictions.csv"
}

locals {
  # deploy/kubernetes/<environment>/kustomization.yaml: namespace <project>-<environment>.
  kubernetes_namespace = local.name
  # The service accounts of deploy/kubernetes/base/serviceaccount.yaml, by workload.
  kubernetes_service_accounts = {
    server = var.project
    batch  = "${var.project}-batch"
  }
  cluster_enabled = var.cluster_name != ""
  workload_identities = {
    server = azurerm_user_assigned_identity.runtime
    batch  = azurerm_user_assigned_identity.batch
  }
  # The storage account and key vault firewalls admit the cluster's node subnets.
  trusted_subnet_ids = var.cluster_subnet_ids
}

data "azurerm_kubernetes_cluster" "this" {
  count = local.cluster_enabled ? 1 : 0

  name                = var.cluster_name
  resource_group_name = var.cluster_resource_group

  lifecycle {
    postcondition {
      condition     = self.oidc_issuer_enabled && self.workload_identity_enabled
      error_message = "AKS cluster ${var.cluster_name} needs the OIDC issuer and Workload Identity enabled (az aks update --enable-oidc-issuer --enable-workload-identity)."
    }
  }
}

# An image is deployed to the cluster: refuse a deploy before cluster_name is set.
resource "terraform_data" "kubernetes_cluster" {
  count = local.serving_enabled ? 1 : 0

  input = var.cluster_name

  lifecycle {
    precondition {
      condition     = local.cluster_enabled
      error_message = "Set cluster_name and cluster_resource_group in envs/${var.environment}.tfvars (the organisation's AKS cluster) before deploying an image."
    }
  }
}

resource "azurerm_user_assigned_identity" "batch" {
  name                = "${local.name}-batch"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

# Workload Identity: each managed identity trusts one Kubernetes service account of this namespace only.
resource "azurerm_federated_identity_credential" "kubernetes" {
  for_each = local.cluster_enabled ? local.kubernetes_service_accounts : {}

  name                = "aks-${local.kubernetes_namespace}-${each.value}"
  resource_group_name = azurerm_resource_group.main.name
  parent_id           = local.workload_identities[each.key].id
  issuer              = data.azurerm_kubernetes_cluster.this[0].oidc_issuer_url
  subject             = "system:serviceaccount:${local.kubernetes_namespace}:${each.value}"
  audience            = ["api://AzureADTokenExchange"]
}

# The batch job reads its input and writes its output in the data container.
resource "azurerm_role_assignment" "batch_data_contributor" {
  scope                = azurerm_storage_container.main["data"].id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.batch.principal_id
  principal_type       = "ServicePrincipal"
}

# The nodes pull the image from this environment's registry.
resource "azurerm_role_assignment" "cluster_acr_pull" {
  count = local.cluster_enabled ? 1 : 0

  scope                = azurerm_container_registry.main.id
  role_definition_name = "AcrPull"
  principal_id         = data.azurerm_kubernetes_cluster.this[0].kubelet_identity[0].object_id
  principal_type       = "ServicePrincipal"
}

# CD: `az aks get-credentials` (cluster user), then edits in this namespace only (scope <cluster>/namespaces/<ns>).
resource "azurerm_role_assignment" "ci_cluster_user" {
  count = local.cluster_enabled && var.grant_ci_cluster_access ? 1 : 0

  scope                = data.azurerm_kubernetes_cluster.this[0].id
  role_definition_name = "Azure Kubernetes Service Cluster User Role"
  principal_id         = azurerm_user_assigned_identity.ci.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "ci_namespace_writer" {
  count = local.cluster_enabled && var.grant_ci_cluster_access ? 1 : 0

  scope                = "${data.azurerm_kubernetes_cluster.this[0].id}/namespaces/${local.kubernetes_namespace}"
  role_definition_name = "Azure Kubernetes Service RBAC Writer"
  principal_id         = azurerm_user_assigned_identity.ci.principal_id
  principal_type       = "ServicePrincipal"
}

output "service_url" {
  description = "HTTPS URL of the service's Ingress (https://<service_domain>); empty until service_domain is set."
  value       = var.service_domain != "" ? "https://${var.service_domain}" : ""
}
