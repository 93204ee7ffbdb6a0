# Key vault holding the customer-managed key of the storage account. RBAC only (no access policies), purge
# protection, a firewall that admits trusted Azure services (storage encryption), the serving subnet and
# var.allowed_ip_ranges, and a key that rotates itself.

resource "azurerm_key_vault" "main" {
  name                = local.compact_name
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tenant_id           = data.azurerm_client_config.current.tenant_id
  # Premium holds HSM-protected keys; the SKU has no base fee, only per-key and per-operation charges.
  sku_name                   = "premium"
  rbac_authorization_enabled = true
  purge_protection_enabled   = true
  soft_delete_retention_days = 90
  #checkov:skip=CKV_AZURE_189:The public endpoint stays reachable for the firewall-admitted operators and runners in var.allowed_ip_ranges; network_acls deny everything else. A private endpoint would require Terraform to run inside the network.
  #checkov:skip=CKV2_AZURE_32:No private endpoint for the same reason (and its DNS zone and hourly cost); the firewall and Entra-only RBAC protect the vault.
  public_network_access_enabled = true
  tags                          = local.tags

  network_acls {
    default_action             = "Deny"
    bypass                     = "AzureServices"
    ip_rules                   = local.firewall_ip_rules
    virtual_network_subnet_ids = local.trusted_subnet_ids
  }
}

# Whoever runs the first apply (a platform engineer) creates and rotates keys. CI reads key metadata only.
resource "azurerm_role_assignment" "deployer_key_officer" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Crypto Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_key_vault_key" "storage" {
  name         = "storage-cmk"
  key_vault_id = azurerm_key_vault.main.id
  key_type     = "RSA-HSM"
  key_size     = 3072
  key_opts     = ["unwrapKey", "wrapKey"]
  # The first version expires after two years; rotation creates a new version every year, long before that, and
  # the storage account follows the latest version on its own (the key is referenced without a version).
  expiration_date = timeadd(timestamp(), "17520h")
  tags            = local.tags

  rotation_policy {
    expire_after         = "P2Y"
    notify_before_expiry = "P30D"

    automatic {
      time_after_creation = "P1Y"
    }
  }

  lifecycle {
    ignore_changes = [expiration_date]
  }

  depends_on = [azurerm_role_assignment.deployer_key_officer]
}
