# orchestrator = kubeflow: the managed identity of the pipeline's pods, planned against a mocked azurerm provider with
# one environment's values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "azurerm" {
  source = "./tests/mocks"
}

# azapi is required by the module (versions.tf); nothing of this file uses it.
mock_provider "azapi" {}

run "no_federated_credential_before_the_cluster_is_named" {
  command = plan

  assert {
    condition     = length(azurerm_federated_identity_credential.pipeline) == 0
    error_message = "a federated credential is planned before the cluster's OIDC issuer is given"
  }
}

run "the_identity_trusts_the_profile_service_account_only" {
  command = plan

  variables {
    kubeflow_oidc_issuer_url = "https://westeurope.oic.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/11111111-1111-1111-1111-111111111111/"
  }

  assert {
    condition     = azurerm_federated_identity_credential.pipeline[0].subject == "system:serviceaccount:${var.project}-${var.environment}-pipeline:${var.project}-pipeline"
    error_message = "the pipeline identity must trust only the pipeline service account of the profile's namespace"
  }

  assert {
    condition     = azurerm_federated_identity_credential.pipeline[0].issuer == var.kubeflow_oidc_issuer_url
    error_message = "the pipeline identity must trust the given cluster's OIDC issuer"
  }

  assert {
    condition = (
      azurerm_role_assignment.pipeline_run_store.condition_version == "2.0"
      && strcontains(azurerm_role_assignment.pipeline_run_store.condition, "StringStartsWith 'pipeline/'")
    )
    error_message = "the pipeline identity's blob access is not limited to the pipeline/ prefix"
  }
}
