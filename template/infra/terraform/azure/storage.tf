# Storage account with two private containers: `data` (the DVC remote under dvc/, batch input and output) and
# `models` (model artifacts). Encrypted twice (infrastructure encryption plus a customer-managed key), Entra ID
# only (no shared keys, no SAS signed with account keys, no local users), HTTPS and TLS 1.2 only, versioned, soft-
# delete protected, firewalled, and every read, write and delete logged to Log Analytics.

# The account's own identity unwraps the customer-managed key; it exists before the account so encryption is on
# from the first write.
resource "azurerm_user_assigned_identity" "storage" {
  name                = "${local.name}-storage"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "storage_key_user" {
  scope                = azurerm_key_vault_key.storage.resource_versionless_id
  role_definition_name = "Key Vault Crypto Service Encryption User"
  principal_id         = azurerm_user_assigned_identity.storage.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_storage_account" "main" {
  name                              = local.compact_name
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
  #checkov:skip=CKV_AZURE_59:Public endpoint restricted to selected networks: network_rules deny by default and admit only the serving subnet, trusted Azure services and var.allowed_ip_ranges (DVC from workstations and runners).
  #checkov:skip=CKV2_AZURE_33:No private endpoint: DVC pushes from workstations and GitHub runners outside the network; the firewall and Entra-only access protect the account.
  #checkov:skip=CKV_AZURE_33:No queues are used. Queue logging is a classic data-plane setting that needs shared keys; the diagnostic setting below logs the blob service instead.
  public_network_access_enabled = true
  tags                          = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.storage.id]
  }

  customer_managed_key {
    key_vault_key_id          = azurerm_key_vault_key.storage.versionless_id
    user_assigned_identity_id = azurerm_user_assigned_identity.storage.id
  }

  blob_properties {
    versioning_enabled                 = true
    last_access_time_enabled           = true
    auto_tier_to_hot_from_cool_enabled = true

    delete_retention_policy {
      days = var.soft_delete_retention_days
    }

    container_delete_retention_policy {
      days = var.soft_delete_retention_days
    }
  }

  # User-delegation SAS (the only kind possible without shared keys) must be short-lived.
  sas_policy {
    expiration_period = "00.04:00:00"
    expiration_action = "Block"
  }

  network_rules {
    default_action             = "Deny"
    bypass                     = ["AzureServices", "Logging", "Metrics"]
    ip_rules                   = local.firewall_ip_rules
    virtual_network_subnet_ids = local.trusted_subnet_ids
  }

  depends_on = [azurerm_role_assignment.storage_key_user]
}

resource "azurerm_storage_container" "main" {
  #checkov:skip=CKV2_AZURE_21:Blob read logging is on through the diagnostic setting below (StorageRead to Log Analytics); the check only recognises the legacy storage-insights resource, which needs shared keys.
  for_each              = toset(["data", "models"])
  name                  = each.key
  storage_account_id    = azurerm_storage_account.main.id
  container_access_type = "private"
}

# Current versions cool down when they go unread; replaced versions and soft-deleted blobs leave after the
# recovery window, so versioning does not grow the bill forever.
resource "azurerm_storage_management_policy" "main" {
  storage_account_id = azurerm_storage_account.main.id

  rule {
    name    = "tier-and-expire-versions"
    enabled = true

    filters {
      blob_types = ["blockBlob"]
    }

    actions {
      base_blob {
        tier_to_cool_after_days_since_last_access_time_greater_than = 30
      }

      version {
        delete_after_days_since_creation = var.soft_delete_retention_days
      }
    }
  }

  rule {
    name    = "expire-batch-output"
    enabled = true

    filters {
      blob_types   = ["blockBlob"]
      prefix_match = ["data/batch/output/"]
    }

    actions {
      base_blob {
        delete_after_days_since_modification_greater_than = 90
      }
    }
  }
}

# Access logging: every read, write and delete on blobs, plus transaction metrics, in Log Analytics.
resource "azurerm_monitor_diagnostic_setting" "storage_blob" {
  name                       = "blob-access-logs"
  target_resource_id         = "${azurerm_storage_account.main.id}/blobServices/default"
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
