locals {
  name      = "${var.project}-${var.environment}"
  env_short = var.environment == "production" ? "prd" : "stg"

  # Container Apps and Azure ML names are limited to 32 characters: <project (max 18)>-<stg|prd>.
  short_name = "${trimsuffix(substr(var.project, 0, 18), "-")}-${local.env_short}"

  # Storage account, key vault and registry names are global DNS names without hyphens; a suffix derived from the
  # subscription keeps them unique across organisations that render the template with the same project name.
  unique_suffix = substr(sha1("${data.azurerm_client_config.current.subscription_id}/${local.name}"), 0, 6)
  compact_name  = "${substr(replace(var.project, "-", ""), 0, 15)}${local.env_short}${local.unique_suffix}"

  is_production = var.environment == "production"

  # Who may reach the storage and key vault data planes from outside Azure (README.md, "Network access").
  firewall_ip_rules = distinct(compact(concat(var.allowed_ip_ranges, [var.runner_ip])))

  # Serving resources exist only once CD has pushed an image: the first apply creates storage, registry and
  # identities, CD pushes the image, then `make deploy ENV=<env> IMAGE_TAG=<sha>` creates or updates serving.
  # Each environment pulls from its own registry: CD pushes to staging's and imports the tested digest into
  # production's before deploying it there (image_importers, cd.yml).
  serving_enabled = var.image_tag != ""
  # By digest whenever CD gives one (production always): a tag pushed again can never change what runs.
  image_name = "${azurerm_container_registry.main.login_server}/${var.project}"
  image      = var.image_digest != "" ? "${local.image_name}@${var.image_digest}" : "${local.image_name}:${var.image_tag}"

  tags = {
    project     = var.project
    environment = var.environment
    owner       = var.owner
    cost_center = var.cost_center
    managed_by  = "terraform"
  }
}

resource "azurerm_resource_group" "main" {
  name     = local.name
  location = var.location
  tags     = local.tags
}

# Serving logs, storage access logs and registry events, queried in one place and kept for a year by default.
resource "azurerm_log_analytics_workspace" "main" {
  name                = "${local.name}-logs"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  daily_quota_gb      = var.log_daily_quota_gb
  tags                = local.tags
}
