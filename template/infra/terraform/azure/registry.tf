# The project's container registry. Entra ID only (no admin user, no anonymous pull); images are pushed by CI with
# the git SHA as tag and never overwritten (see README.md, "Images").
#
# Basic (staging) and Premium (production, the default) differ in what the service offers: Premium adds the
# retention policy for untagged manifests, zone redundancy and dedicated data endpoints for about ten times the
# price of Basic. The settings below apply them whenever the SKU allows.

locals {
  registry_premium = var.registry_sku == "Premium"
}

resource "azurerm_container_registry" "main" {
  name                = local.compact_name
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  sku                 = var.registry_sku
  admin_enabled       = false
  #checkov:skip=CKV_AZURE_139:CI pushes from GitHub-hosted runners, so the registry keeps a public endpoint; pushes and pulls need Entra ID (AcrPush/AcrPull), anonymous pull is off.
  #checkov:skip=CKV_AZURE_164:Docker Content Trust is deprecated in ACR; images are identified by immutable git-SHA tags written once by CD.
  #checkov:skip=CKV_AZURE_165:One region per environment; geo-replication would double the registry cost without a second serving region.
  #checkov:skip=CKV_AZURE_166:Quarantine blocks every pull until an external scanner releases the image; scanning is Defender for Containers (README.md, "Images").
  public_network_access_enabled = true
  anonymous_pull_enabled        = false
  retention_policy_in_days      = local.registry_premium ? var.untagged_manifest_retention_days : null
  zone_redundancy_enabled       = local.registry_premium && var.zone_redundant
  data_endpoint_enabled         = local.registry_premium
  tags                          = local.tags
}

resource "azurerm_monitor_diagnostic_setting" "registry" {
  name                       = "registry-events"
  target_resource_id         = azurerm_container_registry.main.id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.main.id

  enabled_log {
    category = "ContainerRegistryRepositoryEvents"
  }

  enabled_log {
    category = "ContainerRegistryLoginEvents"
  }

  enabled_metric {
    category = "AllMetrics"
  }
}
