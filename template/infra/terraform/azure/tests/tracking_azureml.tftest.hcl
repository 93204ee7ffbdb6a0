# tracking_server = managed: the Azure ML workspace as the MLflow tracking server (tracking_azureml.tf), planned against
# mocked providers with one environment's values.

mock_provider "azurerm" {
  source = "./tests/mocks"
}

mock_provider "azapi" {}

run "the_workspace_tracks" {
  command = plan

  assert {
    condition     = startswith(output.tracking_uri, "azureml://") && strcontains(output.tracking_uri, "/providers/Microsoft.MachineLearningServices/workspaces/")
    error_message = "tracking_uri must be the workspace's azureml:// MLflow URI"
  }

  assert {
    condition     = length(azurerm_role_assignment.ci_tracking) == 1 && azurerm_role_assignment.ci_tracking[0].role_definition_name == "AzureML Data Scientist"
    error_message = "CI's identity must be able to log runs and register models in the workspace, nothing more"
  }
}

run "existing_server_creates_nothing" {
  command = plan

  variables {
    tracking_server_url = "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/0/resourceGroups/shared/providers/Microsoft.MachineLearningServices/workspaces/shared"
  }

  assert {
    condition     = length(azurerm_role_assignment.ci_tracking) == 0 && startswith(output.tracking_uri, "azureml://westeurope.api.azureml.ms/")
    error_message = "with tracking_server_url set, the stack must create nothing and point clients at that server"
  }
}
