# tracking_server = self_hosted: the shared MLflow server (tracking_server.tf), planned against mocked providers with
# one environment's values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "azurerm" {
  source = "./tests/mocks"
}

mock_provider "azapi" {}

variables {
  tracking_entra = {
    client_id = "44444444-4444-4444-4444-444444444444"
  }
  tracking_server_image = "example.azurecr.io/mlflow@sha256:c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
}

run "existing_server_creates_nothing" {
  command = plan

  variables {
    tracking_server_url = "https://mlflow.example.com/"
  }

  assert {
    condition = (
      length(azurerm_container_app.tracking) == 0 && length(azurerm_postgresql_flexible_server.tracking) == 0
      && length(azurerm_storage_account.tracking) == 0 && length(azurerm_virtual_network.tracking) == 0
      && length(azapi_resource.tracking_auth) == 0 && output.tracking_uri == "https://mlflow.example.com"
    )
    error_message = "with tracking_server_url set, the stack must create nothing and point clients at that server"
  }
}

run "creates_the_server" {
  command = plan

  assert {
    condition = (
      length(azurerm_container_app.tracking) == 1 && length(azurerm_postgresql_flexible_server.tracking) == 1
      && length(azurerm_storage_account.tracking) == 1 && length(azapi_resource.tracking_auth) == 1
    )
    error_message = "the server, its database, artefact account and authentication are not all planned"
  }

  assert {
    condition     = output.tracking_audience == "api://44444444-4444-4444-4444-444444444444"
    error_message = "CI's Entra token must be requested for the server's application ID URI"
  }

  assert {
    condition = (
      azapi_resource.tracking_auth[0].body.properties.globalValidation.unauthenticatedClientAction == "Return401"
      && azapi_resource.tracking_auth[0].body.properties.identityProviders.azureActiveDirectory.validation.allowedAudiences[0] == "api://44444444-4444-4444-4444-444444444444"
      && contains(azapi_resource.tracking_auth[0].body.properties.identityProviders.azureActiveDirectory.validation.defaultAuthorizationPolicy.allowedApplications, "44444444-4444-4444-4444-444444444444")
      && length(azapi_resource.tracking_auth[0].body.properties.identityProviders.azureActiveDirectory.validation.defaultAuthorizationPolicy.allowedApplications) == 2
    )
    error_message = "only Entra tokens for the server's audience, from the app itself and CI's identity, may pass"
  }

  assert {
    condition = (
      azurerm_postgresql_flexible_server.tracking[0].public_network_access_enabled == false
      && azurerm_storage_account.tracking[0].shared_access_key_enabled == false
      && azurerm_storage_account.tracking[0].network_rules[0].default_action == "Deny"
      && azurerm_container_app.tracking[0].ingress[0].allow_insecure_connections == false
    )
    error_message = "the database must be private, the artefact account Entra-only and firewalled, the server HTTPS only"
  }

  assert {
    condition     = contains(azurerm_container_app.tracking[0].template[0].container[0].command, "--serve-artifacts")
    error_message = "MLflow must serve the artefacts itself (clients need no storage rights)"
  }
}

run "backend_store_is_protected_in_production" {
  command = plan

  assert {
    condition = (
      azurerm_postgresql_flexible_server.tracking[0].backup_retention_days == (var.environment == "production" ? 35 : 7)
      && azurerm_postgresql_flexible_server.tracking[0].geo_redundant_backup_enabled == (var.environment == "production")
      && length(azurerm_management_lock.tracking_db) == (var.environment == "production" ? 1 : 0)
    )
    error_message = "production needs 35 days of geo-redundant backups and a delete lock on the backend store"
  }
}
