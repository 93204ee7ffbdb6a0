# serving = kubernetes: `terraform test` plans against a mocked azurerm provider (no subscription, no cluster), run
# with either environment's values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "azurerm" {
  source = "./tests/mocks"

  # The organisation's cluster, with the OIDC issuer and Workload Identity enabled.
  mock_data "azurerm_kubernetes_cluster" {
    defaults = {
      id                        = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/platform/providers/Microsoft.ContainerService/managedClusters/platform"
      oidc_issuer_enabled       = true
      workload_identity_enabled = true
      oidc_issuer_url           = "https://westeurope.oic.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/11111111-1111-1111-1111-111111111111/"
      kubelet_identity          = [{ object_id = "22222222-2222-2222-2222-222222222222", client_id = "33333333-3333-3333-3333-333333333333", user_assigned_identity_id = "" }]
    }
  }
}

# azapi is required by the module (versions.tf); nothing of this mode uses it.
mock_provider "azapi" {}

variables {
  # CD deploys by digest (production refuses a tag alone).
  image_digest           = "sha256:c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  cluster_name           = "platform"
  cluster_resource_group = "platform"
  service_domain         = "churn.example.org"
  image_tag              = "0123456789abcdef"
}

run "workload_identity_trusts_only_the_namespace_service_accounts" {
  command = plan

  assert {
    condition = (
      azurerm_federated_identity_credential.kubernetes["server"].subject == "system:serviceaccount:${var.project}-${var.environment}:${var.project}"
      && azurerm_federated_identity_credential.kubernetes["batch"].subject == "system:serviceaccount:${var.project}-${var.environment}:${var.project}-batch"
      && azurerm_federated_identity_credential.kubernetes["server"].issuer == "https://westeurope.oic.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/11111111-1111-1111-1111-111111111111/"
      && azurerm_federated_identity_credential.kubernetes["server"].audience == ["api://AzureADTokenExchange"]
    )
    error_message = "each managed identity must trust exactly one service account of namespace <project>-<environment>, from the cluster's issuer"
  }

  assert {
    condition     = azurerm_role_assignment.ci_namespace_writer[0].scope == "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/platform/providers/Microsoft.ContainerService/managedClusters/platform/namespaces/${var.project}-${var.environment}"
    error_message = "CD's write access to the cluster must be limited to this environment's namespace"
  }

  assert {
    condition     = output.service_url == "https://churn.example.org" && output.kubernetes_namespace == "${var.project}-${var.environment}"
    error_message = "service_url and the namespace are what make k8s-manifests and the docs expect"
  }
}

run "before_cluster_name_nothing_in_the_cluster_is_planned" {
  command = plan

  variables {
    cluster_name = ""
    image_tag    = ""
  }

  assert {
    condition     = length(azurerm_federated_identity_credential.kubernetes) == 0 && length(azurerm_role_assignment.ci_namespace_writer) == 0
    error_message = "without cluster_name the first apply must create the shared resources only"
  }
}

run "a_deploy_needs_the_cluster" {
  command = plan

  variables {
    cluster_name = ""
  }

  expect_failures = [terraform_data.kubernetes_cluster]
}
