# feature_store = feast: the online store of /predict by id (Azure Cache for Redis), and who may read it.
#
# Azure Cache for Redis, Feast's redis online store: TLS only (port 6380, TLS 1.2), no public network access (a
# private endpoint in the environment's network, resolved through a private DNS zone), the access key only in Key
# Vault as the connection string Feast reads (REDIS_CONNECTION_STRING). The serving identity may read that one
# secret (Key Vault Secrets User on the secret, not the vault); Container Apps resolves it at start. Redis has no
# read-only key, so the service's least privilege is the secret it is given and the network it is in; CI's
# materialisation uses the same secret from a runner the vault's firewall admits.
#
# The registry and the offline source (a Parquet file) are blobs under feature_store/ of the data container.

locals {
  feature_store_uri = "${azurerm_storage_account.main.primary_blob_endpoint}${azurerm_storage_container.main["data"].name}/feature_store"
}

resource "azurerm_subnet" "redis" {
  name                 = "redis"
  resource_group_name  = azurerm_resource_group.main.name
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = [cidrsubnet(var.vnet_address_space, 8, 4)]

  private_endpoint_network_policies = "Enabled" # the NSG below applies to the private endpoint
}

# Only the serving subnet reaches the cache's private endpoint, on the TLS port.
resource "azurerm_network_security_group" "redis" {
  name                = "${local.name}-redis"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags

  security_rule {
    name                       = "redis-tls-from-apps"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "6380"
    source_address_prefixes    = azurerm_subnet.apps.address_prefixes
    destination_address_prefix = "*"
  }

  security_rule {
    name                       = "deny-other-inbound"
    priority                   = 4096
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "redis" {
  subnet_id                 = azurerm_subnet.redis.id
  network_security_group_id = azurerm_network_security_group.redis.id
}

resource "azurerm_redis_cache" "features" {
  name                          = "${local.compact_name}feat"
  location                      = azurerm_resource_group.main.location
  resource_group_name           = azurerm_resource_group.main.name
  capacity                      = local.is_production ? 1 : 0
  family                        = "C"
  sku_name                      = "Standard"
  non_ssl_port_enabled          = false
  minimum_tls_version           = "1.2"
  public_network_access_enabled = false
  redis_version                 = "6"
  tags                          = local.tags

  redis_configuration {
    authentication_enabled = true
  }
}

resource "azurerm_private_dns_zone" "redis" {
  name                = "privatelink.redis.cache.windows.net"
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "redis" {
  name                  = "${local.name}-redis"
  resource_group_name   = azurerm_resource_group.main.name
  private_dns_zone_name = azurerm_private_dns_zone.redis.name
  virtual_network_id    = azurerm_virtual_network.main.id
  tags                  = local.tags
}

resource "azurerm_private_endpoint" "redis" {
  name                = "${local.name}-redis"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  subnet_id           = azurerm_subnet.redis.id
  tags                = local.tags

  private_service_connection {
    name                           = "${local.name}-redis"
    private_connection_resource_id = azurerm_redis_cache.features.id
    subresource_names              = ["redisCache"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "redis"
    private_dns_zone_ids = [azurerm_private_dns_zone.redis.id]
  }
}

# Feast's connection string: host:6380, TLS, the primary access key. Only here, never in the app's settings.
resource "azurerm_key_vault_secret" "redis_connection" {
  name            = "feature-store-redis"
  key_vault_id    = azurerm_key_vault.main.id
  value           = "${azurerm_redis_cache.features.hostname}:${azurerm_redis_cache.features.ssl_port},ssl=true,password=${azurerm_redis_cache.features.primary_access_key}"
  content_type    = "text/plain"
  expiration_date = timeadd(plantimestamp(), "8760h")

  lifecycle {
    ignore_changes = [expiration_date]
  }
}

resource "azurerm_role_assignment" "feature_store_secret_readers" {
  for_each = {
    runtime = azurerm_user_assigned_identity.runtime.principal_id
    ci      = azurerm_user_assigned_identity.ci.principal_id
  }

  scope                = azurerm_key_vault_secret.redis_connection.resource_versionless_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = each.value
}

# The service reads the registry (and nothing else of the data container): an ABAC condition keeps its blob reads
# under feature_store/.
resource "azurerm_role_assignment" "runtime_reads_feature_registry" {
  scope                = azurerm_storage_container.main["data"].id
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = azurerm_user_assigned_identity.runtime.principal_id
  principal_type       = "ServicePrincipal"
  condition_version    = "2.0"
  condition            = <<-EOT
    (
      (
        !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'})
      )
      OR
      (
        @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringStartsWith 'feature_store/'
      )
    )
  EOT
}

output "feature_store_uri" {
  description = "FEATURE_STORE_URI of CI's pipeline: the registry and the offline source of the feature store."
  value       = local.feature_store_uri
}

output "feature_store_key_vault" {
  description = "FEATURE_STORE_KEY_VAULT of CI's pipeline: the vault holding the secret feature-store-redis."
  value       = azurerm_key_vault.main.name
}
