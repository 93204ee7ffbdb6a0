# tracking_server = self_hosted: the shared MLflow tracking server and model registry of this environment.
#
#   clients -(HTTPS, Entra ID token)-> Container App `mlflow` (built-in authentication, its own network) -> PostgreSQL
#   flexible server (private access only, delegated subnet) ; artefacts in a storage account of its own (Blob,
#   Entra ID only, firewalled to the server's subnet), served through MLflow (`--serve-artifacts`).
#
# - Who gets in: the Container App's authentication validates Entra ID tokens issued for the organisation's app
#   registration of the server (var.tracking_entra.client_id; its application ID URI is the token audience) and
#   admits only the client applications listed: people signing in through that app registration, and CI's
#   user-assigned identity (identity.tf), which GitHub Actions becomes through workload identity federation with its
#   OIDC token (no secret). .github/actions/tracking-auth then asks Entra ID for an access token for the audience
#   (`az account get-access-token --resource <audience>`) and MLflow sends it as a bearer token.
# - Backend store: PostgreSQL 16, 35 days of backups (geo-redundant) and a delete lock in production. Its
#   administrator password is a Key Vault secret the administrator creates once (README.md), never in tfvars.
# - Artefacts: only the server's identity holds a data role on the artefact container.
#
# Nothing is created when var.tracking_server_url names the organisation's existing server, nor before
# var.tracking_entra is set: tracking_uri is then that URL, or "".

variable "tracking_server_url" {
  description = "HTTPS URL of the organisation's existing MLflow server: set, this stack creates no tracking server and points clients at it. \"\": the stack runs its own."
  type        = string
  default     = ""

  validation {
    condition     = var.tracking_server_url == "" || can(regex("^https://[^/\\s]+(/.*)?$", var.tracking_server_url))
    error_message = "tracking_server_url must be an https:// URL (or \"\" to create the server)."
  }
}

variable "tracking_server_audience" {
  description = "Application ID URI CI's Entra token is requested for when tracking_server_url is set; \"\": api://<tracking_entra.client_id>."
  type        = string
  default     = ""
}

variable "tracking_entra" {
  description = "The organisation's Entra ID app registration of the tracking server (client_id; its application ID URI api://<client_id> is the token audience) and the extra client application ids let in besides CI's identity and the app itself."
  type = object({
    client_id           = string
    allowed_client_apps = optional(list(string), [])
  })
  default = null
}

variable "tracking_server_image" {
  description = "MLflow server image by digest (<registry>/<repository>@sha256:<64 hex>), with psycopg2, azure-storage-blob and azure-identity installed; push it to this environment's registry."
  type        = string
  default     = ""

  validation {
    condition     = var.tracking_server_image == "" || can(regex("^[^@\\s]+@sha256:[0-9a-f]{64}$", var.tracking_server_image))
    error_message = "tracking_server_image must be pinned by digest: <repository>@sha256:<64 lowercase hex digits>."
  }
}

variable "tracking_db_password_secret_name" {
  description = "Key Vault secret (in this environment's vault) holding the PostgreSQL administrator password, created once by an administrator."
  type        = string
  default     = "mlflow-db-password"
}

variable "tracking_db_sku" {
  description = "SKU of the PostgreSQL flexible server (Burstable B1ms is enough for one team's runs)."
  type        = string
  default     = "B_Standard_B1ms"
}

variable "tracking_vnet_address_space" {
  description = "Address space of the tracking server's own virtual network."
  type        = string
  default     = "10.41.0.0/16"
}

variable "tracking_allowed_ip_ranges" {
  description = "Client IP ranges (CIDR) that may reach the tracking server; empty: any address, every request still needs an Entra ID token."
  type        = list(string)
  default     = []
}

locals {
  tracking_create  = var.tracking_server_url == "" && var.tracking_entra != null
  tracking_count   = local.tracking_create ? 1 : 0
  tracking_storage = "${substr(replace(var.project, "-", ""), 0, 12)}mlf${local.env_short}${local.unique_suffix}"
  tracking_uri = (
    var.tracking_server_url != "" ? trimsuffix(var.tracking_server_url, "/")
    : local.tracking_create ? "https://${azurerm_container_app.tracking[0].ingress[0].fqdn}" : ""
  )
  tracking_audience = (
    var.tracking_server_audience != "" ? var.tracking_server_audience
    : var.tracking_entra != null ? "api://${var.tracking_entra.client_id}" : local.tracking_uri
  )
}

# Network: Container Apps in `apps`, PostgreSQL in `db` (delegated), resolved through a private DNS zone.

resource "azurerm_virtual_network" "tracking" {
  count = local.tracking_count

  name                = "${local.name}-tracking-vnet"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  address_space       = [var.tracking_vnet_address_space]
  tags                = local.tags
}

resource "azurerm_subnet" "tracking_apps" {
  count = local.tracking_count

  name                 = "tracking-apps"
  resource_group_name  = azurerm_resource_group.main.name
  virtual_network_name = azurerm_virtual_network.tracking[0].name
  address_prefixes     = [cidrsubnet(var.tracking_vnet_address_space, 7, 0)]
  service_endpoints    = ["Microsoft.Storage"]

  delegation {
    name = "container-apps"

    service_delegation {
      name    = "Microsoft.App/environments"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

resource "azurerm_subnet" "tracking_db" {
  count = local.tracking_count

  name                 = "tracking-db"
  resource_group_name  = azurerm_resource_group.main.name
  virtual_network_name = azurerm_virtual_network.tracking[0].name
  address_prefixes     = [cidrsubnet(var.tracking_vnet_address_space, 8, 2)]

  delegation {
    name = "postgresql"

    service_delegation {
      name    = "Microsoft.DBforPostgreSQL/flexibleServers"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

resource "azurerm_network_security_group" "tracking_apps" {
  count = local.tracking_count

  name                = "${local.name}-tracking-apps-nsg"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags

  security_rule {
    name                       = "allow-https-inbound"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "443"
    source_address_prefix      = "Internet"
    destination_address_prefix = "VirtualNetwork"
  }
}

resource "azurerm_subnet_network_security_group_association" "tracking_apps" {
  count = local.tracking_count

  subnet_id                 = azurerm_subnet.tracking_apps[0].id
  network_security_group_id = azurerm_network_security_group.tracking_apps[0].id
}

# The database subnet admits PostgreSQL from the server's subnet only.
resource "azurerm_network_security_group" "tracking_db" {
  count = local.tracking_count

  name                = "${local.name}-tracking-db-nsg"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags

  security_rule {
    name                       = "allow-postgresql-from-tracking-apps"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "5432"
    source_address_prefix      = cidrsubnet(var.tracking_vnet_address_space, 7, 0)
    destination_address_prefix = cidrsubnet(var.tracking_vnet_address_space, 8, 2)
  }

  security_rule {
    name                       = "deny-other-inbound"
    priority                   = 4000
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "tracking_db" {
  count = local.tracking_count

  subnet_id                 = azurerm_subnet.tracking_db[0].id
  network_security_group_id = azurerm_network_security_group.tracking_db[0].id
}

resource "azurerm_private_dns_zone" "tracking_db" {
  count = local.tracking_count

  name                = "${local.name}-tracking.private.postgres.database.azure.com"
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "tracking_db" {
  count = local.tracking_count

  name                  = "${local.name}-tracking"
  resource_group_name   = azurerm_resource_group.main.name
  private_dns_zone_name = azurerm_private_dns_zone.tracking_db[0].name
  virtual_network_id    = azurerm_virtual_network.tracking[0].id
  registration_enabled  = false
  tags                  = local.tags
}

# Backend store

data "azurerm_key_vault_secret" "tracking_db_password" {
  count = local.tracking_count

  name         = var.tracking_db_password_secret_name
  key_vault_id = azurerm_key_vault.main.id
}

resource "azurerm_postgresql_flexible_server" "tracking" {
  #checkov:skip=CKV2_AZURE_57:Private access through VNet integration (a delegated subnet and a private DNS zone) instead of a private endpoint: the server has no public endpoint at all.
  count = local.tracking_count

  name                          = "${local.name}-tracking"
  location                      = azurerm_resource_group.main.location
  resource_group_name           = azurerm_resource_group.main.name
  version                       = "16"
  sku_name                      = var.tracking_db_sku
  storage_mb                    = 32768
  delegated_subnet_id           = azurerm_subnet.tracking_db[0].id
  private_dns_zone_id           = azurerm_private_dns_zone.tracking_db[0].id
  public_network_access_enabled = false
  administrator_login           = "mlflow"
  administrator_password        = data.azurerm_key_vault_secret.tracking_db_password[0].value
  backup_retention_days         = local.is_production ? 35 : 7
  geo_redundant_backup_enabled  = local.is_production
  tags                          = local.tags

  authentication {
    password_auth_enabled         = true
    active_directory_auth_enabled = true
    tenant_id                     = data.azurerm_client_config.current.tenant_id
  }

  lifecycle {
    # Azure places the server in a zone of its choice; a failover may move it.
    ignore_changes = [zone]
  }

  depends_on = [azurerm_private_dns_zone_virtual_network_link.tracking_db]
}

resource "azurerm_postgresql_flexible_server_database" "mlflow" {
  count = local.tracking_count

  name      = "mlflow"
  server_id = azurerm_postgresql_flexible_server.tracking[0].id
  charset   = "UTF8"
  collation = "en_US.utf8"
}

# Connections and slow queries in the server log (Log Analytics below).
resource "azurerm_postgresql_flexible_server_configuration" "tracking" {
  for_each = local.tracking_create ? {
    log_connections            = "on"
    log_disconnections         = "on"
    log_checkpoints            = "on"
    log_min_duration_statement = "1000"
  } : {}

  name      = each.key
  server_id = azurerm_postgresql_flexible_server.tracking[0].id
  value     = each.value
}

resource "azurerm_monitor_diagnostic_setting" "tracking_db" {
  count = local.tracking_count

  name                       = "postgresql-logs"
  target_resource_id         = azurerm_postgresql_flexible_server.tracking[0].id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.main.id

  enabled_log {
    category = "PostgreSQLLogs"
  }

  enabled_metric {
    category = "AllMetrics"
  }
}

# Production: the backend store cannot be deleted (by Terraform or by hand) until the lock is removed on purpose.
resource "azurerm_management_lock" "tracking_db" {
  count = local.tracking_create && local.is_production ? 1 : 0

  name       = "keep-the-tracking-backend-store"
  scope      = azurerm_postgresql_flexible_server.tracking[0].id
  lock_level = "CanNotDelete"
  notes      = "The MLflow backend store of ${local.name}: every run and registered model version."
}

# Artefact store: an account of its own, firewalled to the server's subnet, Entra ID only, with the project's key.

resource "azurerm_storage_account" "tracking" {
  #checkov:skip=CKV_AZURE_59:Public endpoint restricted to selected networks: network_rules deny by default and admit only the tracking server's subnet and trusted Azure services.
  #checkov:skip=CKV2_AZURE_33:No private endpoint: the firewall admits only the tracking server's subnet (service endpoint), and Entra-only access protects the account.
  #checkov:skip=CKV_AZURE_33:No queues are used. Queue logging is a classic data-plane setting that needs shared keys; the diagnostic setting below logs the blob service instead.
  #checkov:skip=CKV_AZURE_206:Replication follows var.storage_replication like the project's account; artefacts are versioned and soft-delete protected.
  count = local.tracking_count

  name                              = local.tracking_storage
  location                          = azurerm_resource_group.main.location
  resource_group_name               = azurerm_resource_group.main.name
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = var.storage_replication
  access_tier                       = "Hot"
  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  local_user_enabled                = false
  sftp_enabled                      = false
  infrastructure_encryption_enabled = true
  cross_tenant_replication_enabled  = false
  public_network_access_enabled     = true
  tags                              = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.storage.id]
  }

  customer_managed_key {
    key_vault_key_id          = azurerm_key_vault_key.storage.versionless_id
    user_assigned_identity_id = azurerm_user_assigned_identity.storage.id
  }

  blob_properties {
    versioning_enabled = true

    delete_retention_policy {
      days = var.soft_delete_retention_days
    }

    container_delete_retention_policy {
      days = var.soft_delete_retention_days
    }
  }

  sas_policy {
    expiration_period = "00.04:00:00"
    expiration_action = "Block"
  }

  network_rules {
    default_action             = "Deny"
    bypass                     = ["AzureServices", "Logging", "Metrics"]
    virtual_network_subnet_ids = [azurerm_subnet.tracking_apps[0].id]
  }

  depends_on = [azurerm_role_assignment.storage_key_user]
}

resource "azurerm_storage_container" "tracking" {
  #checkov:skip=CKV2_AZURE_21:Blob read logging is on through the diagnostic setting below (StorageRead to Log Analytics); the check only recognises the legacy storage-insights resource, which needs shared keys.
  count = local.tracking_count

  name                  = "mlflow"
  storage_account_id    = azurerm_storage_account.tracking[0].id
  container_access_type = "private"
}

resource "azurerm_monitor_diagnostic_setting" "tracking_blob" {
  count = local.tracking_count

  name                       = "blob-access-logs"
  target_resource_id         = "${azurerm_storage_account.tracking[0].id}/blobServices/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.main.id

  enabled_log {
    category = "StorageRead"
  }

  enabled_log {
    category = "StorageWrite"
  }

  enabled_log {
    category = "StorageDelete"
  }

  enabled_metric {
    category = "Transaction"
  }
}

# The server's identity: the artefact container, and pulling its image. Nothing else holds a data role on it.
resource "azurerm_user_assigned_identity" "tracking" {
  count = local.tracking_count

  name                = "${local.name}-tracking"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "tracking_artefacts" {
  count = local.tracking_count

  scope                = azurerm_storage_container.tracking[0].id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.tracking[0].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "tracking_acr_pull" {
  count = local.tracking_count

  scope                = azurerm_container_registry.main.id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_user_assigned_identity.tracking[0].principal_id
  principal_type       = "ServicePrincipal"
}

# The server: a Container Apps environment in its own subnet, one app with Entra ID authentication in front.

resource "azurerm_container_app_environment" "tracking" {
  count = local.tracking_count

  name                           = "${local.short_name}-mlflow"
  location                       = azurerm_resource_group.main.location
  resource_group_name            = azurerm_resource_group.main.name
  log_analytics_workspace_id     = azurerm_log_analytics_workspace.main.id
  infrastructure_subnet_id       = azurerm_subnet.tracking_apps[0].id
  internal_load_balancer_enabled = false
  tags                           = local.tags

  workload_profile {
    name                  = "Consumption"
    workload_profile_type = "Consumption"
  }

  depends_on = [azurerm_subnet_network_security_group_association.tracking_apps]
}

resource "azurerm_container_app" "tracking" {
  count = local.tracking_count

  name                         = "${local.short_name}-mlflow"
  container_app_environment_id = azurerm_container_app_environment.tracking[0].id
  resource_group_name          = azurerm_resource_group.main.name
  revision_mode                = "Single"
  workload_profile_name        = "Consumption"
  tags                         = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.tracking[0].id]
  }

  registry {
    server   = azurerm_container_registry.main.login_server
    identity = azurerm_user_assigned_identity.tracking[0].id
  }

  # Container Apps keeps secrets encrypted; the container reads the password as PGPASSWORD (libpq), never in a URI.
  secret {
    name  = "pgpassword"
    value = data.azurerm_key_vault_secret.tracking_db_password[0].value
  }

  ingress {
    external_enabled           = true
    target_port                = 5000
    transport                  = "auto"
    allow_insecure_connections = false

    traffic_weight {
      latest_revision = true
      percentage      = 100
    }

    dynamic "ip_security_restriction" {
      for_each = var.tracking_allowed_ip_ranges

      content {
        name             = "allowed-${ip_security_restriction.key}"
        action           = "Allow"
        ip_address_range = ip_security_restriction.value
      }
    }
  }

  template {
    min_replicas = 1
    max_replicas = local.is_production ? 3 : 1

    container {
      name  = "mlflow"
      image = var.tracking_server_image
      # The same image serves several projects' versions of MLflow: the command pins what this server does.
      command = [
        "mlflow", "server", "--host", "0.0.0.0", "--port", "5000", "--workers", "2",
        "--backend-store-uri", "postgresql://mlflow@${azurerm_postgresql_flexible_server.tracking[0].fqdn}:5432/mlflow?sslmode=require",
        "--artifacts-destination", "wasbs://mlflow@${local.tracking_storage}.blob.core.windows.net/artifacts", "--serve-artifacts",
      ]
      cpu    = 1
      memory = "2Gi"

      env {
        name        = "PGPASSWORD"
        secret_name = "pgpassword" # pragma: allowlist secret
      }

      # azure-identity picks the server's user-assigned identity for Blob.
      env {
        name  = "AZURE_CLIENT_ID"
        value = azurerm_user_assigned_identity.tracking[0].client_id
      }

      env {
        name  = "MLFLOW_DISABLE_TELEMETRY"
        value = "true"
      }

      liveness_probe {
        transport = "HTTP"
        port      = 5000
        path      = "/health"
      }

      readiness_probe {
        transport = "HTTP"
        port      = 5000
        path      = "/health"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.tracking_server_image != ""
      error_message = "tracking_entra is set, so this stack creates the tracking server: set tracking_server_image (by digest) in envs/${var.environment}.tfvars."
    }
  }

  depends_on = [azurerm_role_assignment.tracking_acr_pull, azurerm_role_assignment.tracking_artefacts]
}

# Built-in authentication (Easy Auth): Entra ID tokens for the server's app registration only, from the app itself
# (people) and CI's identity; an unauthenticated browser is sent to the login page, an API call gets 401.
resource "azapi_resource" "tracking_auth" {
  count = local.tracking_count

  type      = "Microsoft.App/containerApps/authConfigs@2024-03-01"
  name      = "current"
  parent_id = azurerm_container_app.tracking[0].id

  body = {
    properties = {
      platform = { enabled = true }
      globalValidation = {
        unauthenticatedClientAction = "Return401"
        excludedPaths               = ["/health"]
      }
      identityProviders = {
        azureActiveDirectory = {
          enabled = true
          registration = {
            clientId     = var.tracking_entra.client_id
            openIdIssuer = "https://login.microsoftonline.com/${data.azurerm_client_config.current.tenant_id}/v2.0"
          }
          validation = {
            allowedAudiences = [local.tracking_audience, var.tracking_entra.client_id]
            defaultAuthorizationPolicy = {
              allowedApplications = concat(
                [var.tracking_entra.client_id, azurerm_user_assigned_identity.ci.client_id],
                var.tracking_entra.allowed_client_apps,
              )
            }
          }
        }
      }
      login = { tokenStore = { enabled = false } }
    }
  }
}

output "tracking_uri" {
  description = "MLFLOW_TRACKING_URI of every client (the repository variable of the same name); \"\" until the server exists."
  value       = local.tracking_uri
}

output "tracking_audience" {
  description = "Resource (application ID URI) CI's Entra access token is requested for (.github/actions/tracking-auth, repository variable MLFLOW_TRACKING_AUDIENCE)."
  value       = local.tracking_audience
}
