# Read by people and by GitHub Actions configuration (README.md, "CI access"). No output is a secret.

output "storage_account" {
  description = "Storage account of the environment (DVC: `dvc remote modify --local storage account_name <this>`)."
  value       = azurerm_storage_account.main.name
}

output "data_bucket" {
  description = "<storage account>/<container> of data: the DVC remote (azure://data/dvc) and batch input/output."
  value       = "${azurerm_storage_account.main.name}/${azurerm_storage_container.main["data"].name}"
}

output "model_bucket" {
  description = "<storage account>/<container> of model artifacts."
  value       = "${azurerm_storage_account.main.name}/${azurerm_storage_container.main["models"].name}"
}

output "image_repository" {
  description = "Full image repository in this environment's registry, which its serving pulls from. Staging's is IMAGE_REPOSITORY (CD pushes <this>:<git sha>); CD imports the tested digest into production's before deploying it."
  value       = "${azurerm_container_registry.main.login_server}/${var.project}"
}

output "ci_client_id" {
  description = "Client ID of the CI identity (GitHub variable AZURE_CLIENT_ID)."
  value       = azurerm_user_assigned_identity.ci.client_id
}

output "ci_principal_id" {
  description = "Principal (object) ID of the CI identity: production's value goes into staging's image_importers, so CD can promote images into production's registry."
  value       = azurerm_user_assigned_identity.ci.principal_id
}

output "tenant_id" {
  description = "Entra ID tenant (GitHub variable AZURE_TENANT_ID)."
  value       = data.azurerm_client_config.current.tenant_id
}

output "subscription_id" {
  description = "Subscription of the environment (GitHub variable AZURE_SUBSCRIPTION_ID)."
  value       = data.azurerm_client_config.current.subscription_id
}

output "resource_group" {
  description = "Resource group holding every resource of the environment."
  value       = azurerm_resource_group.main.name
}

output "cloud_region" {
  description = "Region of every resource (GitHub variable CLOUD_REGION)."
  value       = var.location
}

output "image_tag" {
  description = "Image tag deployed by the last apply (empty before the first deploy): the rollback target."
  value       = var.image_tag
}

output "image_digest" {
  description = "Image digest deployed by the last apply (empty when deployed by tag): the rollback target in production."
  value       = var.image_digest
}
