# feature_store = feast: the Azure Cache for Redis online store (feature_store.tf), planned against a mocked
# azurerm provider with one environment's values (`make infra-test` runs this file per environment).

mock_provider "azurerm" {
  source = "./tests/mocks"
}

# azapi is required by the module (versions.tf); nothing of the feature store uses it.
mock_provider "azapi" {}

run "private_tls_only_cache" {
  command = plan

  assert {
    condition = (
      azurerm_redis_cache.features.public_network_access_enabled == false
      && azurerm_redis_cache.features.non_ssl_port_enabled == false
      && azurerm_redis_cache.features.minimum_tls_version == "1.2"
      && one(azurerm_redis_cache.features.redis_configuration).authentication_enabled
    )
    error_message = "the cache takes TLS connections with a key, from its private endpoint only"
  }

  assert {
    condition     = azurerm_private_endpoint.redis.subnet_id == azurerm_subnet.redis.id
    error_message = "the cache is reached through a private endpoint in the environment's network"
  }

  assert {
    condition = alltrue([
      for grant in azurerm_role_assignment.feature_store_secret_readers : grant.role_definition_name == "Key Vault Secrets User"
    ])
    error_message = "the service and CI may read the connection secret, nothing else of the vault"
  }
}
