# Two identities per environment, both without secrets:
# - ci: GitHub Actions signs in as it through OIDC federation, only from this repository's jobs that run in this
#   environment (`environment: <env>` in the workflow) and, in staging (trust_main_branch), jobs on main without an
#   environment (image push, DVC, retraining, drift). Never from pull requests. It pushes images and DVC data and
#   applies Terraform for serving changes. It cannot grant access to anything (no role-assignment rights).
# - runtime: what serving replicas and batch jobs run as. It pulls images and reads models, nothing else (the batch
#   job also writes its output, see serving_batch.tf).
# Every role assignment is created by the first (human) apply, so CI never needs rights to create them.

resource "azurerm_user_assigned_identity" "ci" {
  name                = "${local.name}-ci"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "github_environment" {
  name                = "github-${var.environment}"
  resource_group_name = azurerm_resource_group.main.name
  parent_id           = azurerm_user_assigned_identity.ci.id
  issuer              = "https://token.actions.githubusercontent.com"
  subject             = "repo:${var.github_repository}:environment:${var.environment}"
  audience            = ["api://AzureADTokenExchange"]
}

resource "azurerm_federated_identity_credential" "github_main_branch" {
  count = var.trust_main_branch ? 1 : 0

  name                = "github-main"
  resource_group_name = azurerm_resource_group.main.name
  parent_id           = azurerm_user_assigned_identity.ci.id
  issuer              = "https://token.actions.githubusercontent.com"
  subject             = "repo:${var.github_repository}:ref:refs/heads/main"
  audience            = ["api://AzureADTokenExchange"]
}

# Apply serving changes (container app, job or online endpoint) inside this environment's resource group only.
resource "azurerm_role_assignment" "ci_contributor" {
  scope                = azurerm_resource_group.main.id
  role_definition_name = "Contributor"
  principal_id         = azurerm_user_assigned_identity.ci.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "ci_acr_push" {
  scope                = azurerm_container_registry.main.id
  role_definition_name = "AcrPush"
  principal_id         = azurerm_user_assigned_identity.ci.principal_id
  principal_type       = "ServicePrincipal"
}

# DVC push/pull and model upload.
resource "azurerm_role_assignment" "ci_blob_contributor" {
  scope                = azurerm_storage_account.main.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.ci.principal_id
  principal_type       = "ServicePrincipal"
}

# `terraform plan` refreshes the storage key's metadata; reading metadata is all CI may do in the vault.
resource "azurerm_role_assignment" "ci_key_reader" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Reader"
  principal_id         = azurerm_user_assigned_identity.ci.principal_id
  principal_type       = "ServicePrincipal"
}

# Image promotion: another environment's CI identity (image_importers) imports the exact digest CD tested here into
# its own registry (`az acr import` in cd.yml), so every environment's runtime pulls from its own registry.
resource "azurerm_role_assignment" "image_importers" {
  for_each = {
    for pair in setproduct(var.image_importers, ["AcrPull", "Reader"]) : "${pair[0]}/${pair[1]}" => {
      principal_id = pair[0]
      role         = pair[1]
    }
  }

  scope                = azurerm_container_registry.main.id
  role_definition_name = each.value.role
  principal_id         = each.value.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_user_assigned_identity" "runtime" {
  name                = "${local.name}-runtime"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "runtime_acr_pull" {
  scope                = azurerm_container_registry.main.id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_user_assigned_identity.runtime.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "runtime_models_reader" {
  scope                = azurerm_storage_container.main["models"].id
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = azurerm_user_assigned_identity.runtime.principal_id
  principal_type       = "ServicePrincipal"
}
