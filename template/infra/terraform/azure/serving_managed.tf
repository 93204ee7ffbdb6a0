# Managed serving: an Azure ML workspace (created by the first apply) and, once an image is pushed, a managed
# online endpoint whose single deployment `main` runs the FastAPI image from this environment's registry.
#
# azurerm 4.x has no resource for online endpoints, so the endpoint, its deployment and the environment version
# that points at the image go through azapi (Azure Resource Manager API, Microsoft.MachineLearningServices
# 2024-04-01). `make deploy ENV=<env> IMAGE_TAG=<sha>` stays a plain terraform apply: a new tag creates a new
# environment version and rolls the deployment onto it.

# The online endpoint reaches storage and the key vault as a trusted Azure service; no subnet of ours is involved.
locals {
  trusted_subnet_ids = []
}

variable "ml_workspace_public_network_access" {
  description = "Open the workspace's APIs (still Entra ID only) to clients outside Azure: needed when the workspace is also the MLflow tracking server of CI and people (tracking_server = managed)."
  type        = bool
  default     = false
}

variable "managed_instance_type" {
  description = "VM size of the online deployment's instances."
  type        = string
  default     = "Standard_DS3_v2"
}

variable "managed_instance_count" {
  description = "Instances of the online deployment (at least 2 keeps serving up during platform updates)."
  type        = number
  default     = 2
}

variable "concurrent_requests_per_instance" {
  description = "Requests an instance handles at once; more wait in the queue up to the request timeout."
  type        = number
  default     = 20
}

resource "azurerm_application_insights" "ml" {
  name                         = "${local.name}-ml"
  location                     = azurerm_resource_group.main.location
  resource_group_name          = azurerm_resource_group.main.name
  workspace_id                 = azurerm_log_analytics_workspace.main.id
  application_type             = "web"
  local_authentication_enabled = false
  retention_in_days            = 90
  tags                         = local.tags
}

# The workspace only hosts the endpoint: no data, datasets or compute live in it (the model is baked into the
# image), so it is not flagged high business impact (that setting governs workspace compute and diagnostics). Its
# own APIs and studio are closed to the internet (unless it is also the MLflow tracking server, tracking_azureml.tf);
# the endpoint's scoring URL is public with Entra ID token auth.
resource "azurerm_machine_learning_workspace" "main" {
  name                          = "${local.short_name}-ml"
  location                      = azurerm_resource_group.main.location
  resource_group_name           = azurerm_resource_group.main.name
  application_insights_id       = azurerm_application_insights.ml.id
  key_vault_id                  = azurerm_key_vault.main.id
  storage_account_id            = azurerm_storage_account.main.id
  public_network_access_enabled = var.ml_workspace_public_network_access
  high_business_impact          = false
  sku_name                      = "Basic"
  tags                          = local.tags

  identity {
    type = "SystemAssigned"
  }
}

# The vault is RBAC-only: the workspace stores its connection secrets there (secrets only, never keys).
resource "azurerm_role_assignment" "ml_workspace_secrets" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = azurerm_machine_learning_workspace.main.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azapi_resource" "ml_environment" {
  count = local.serving_enabled ? 1 : 0

  type      = "Microsoft.MachineLearningServices/workspaces/environments@2024-04-01"
  name      = var.project
  parent_id = azurerm_machine_learning_workspace.main.id
  body = {
    properties = {
      description = "Serving image of ${var.project} (one version per image tag)."
    }
  }
}

# Environment versions are immutable: each image tag is a new version, created before the deployment moves to it.
resource "azapi_resource" "ml_environment_version" {
  count = local.serving_enabled ? 1 : 0

  type      = "Microsoft.MachineLearningServices/workspaces/environments/versions@2024-04-01"
  name      = var.image_tag
  parent_id = azapi_resource.ml_environment[0].id
  body = {
    properties = {
      image  = local.image
      osType = "Linux"
      inferenceConfig = {
        livenessRoute  = { path = "/health", port = 8000 }
        readinessRoute = { path = "/ready", port = 8000 }
        scoringRoute   = { path = "/predict", port = 8000 }
      }
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "azapi_resource" "ml_endpoint" {
  count = local.serving_enabled ? 1 : 0

  type      = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints@2024-04-01"
  name      = "${local.short_name}-${local.unique_suffix}"
  parent_id = azurerm_machine_learning_workspace.main.id
  location  = azurerm_resource_group.main.location
  tags      = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.runtime.id]
  }

  body = {
    properties = {
      authMode            = "AADToken"
      publicNetworkAccess = "Enabled"
      description         = "${var.project} ${var.environment} scoring endpoint"
    }
  }

  response_export_values = ["properties.scoringUri"]

  depends_on = [azurerm_role_assignment.runtime_acr_pull]
}

resource "azapi_resource" "ml_deployment" {
  count = local.serving_enabled ? 1 : 0

  type      = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments@2024-04-01"
  name      = "main"
  parent_id = azapi_resource.ml_endpoint[0].id
  location  = azurerm_resource_group.main.location
  tags      = local.tags

  body = {
    sku = {
      name     = "Default"
      capacity = var.managed_instance_count
    }
    properties = {
      endpointComputeType = "Managed"
      instanceType        = var.managed_instance_type
      environmentId       = azapi_resource.ml_environment_version[0].id
      appInsightsEnabled  = true
      environmentVariables = {
        APP_ENV         = var.environment
        AZURE_CLIENT_ID = azurerm_user_assigned_identity.runtime.client_id
        # serving/log_shipper.py uploads the closed inference log files to the data container (inference_log.tf).
        INFERENCE_LOG_URI            = local.inference_log_uri
        AZURE_STORAGE_ACCOUNT_NAME   = azurerm_storage_account.main.name
        INFERENCE_LOG_DIR            = "/tmp/inference"
        INFERENCE_LOG_ROTATE_SECONDS = "60"
        # The endpoint authenticates every call with an Entra ID token (authMode AADToken) before the container.
        AUTH_MODE = "gateway" # the online endpoint authenticates every call (Entra ID token)
      }
      livenessProbe = {
        initialDelay     = "PT10S"
        period           = "PT10S"
        timeout          = "PT3S"
        failureThreshold = 3
        successThreshold = 1
      }
      readinessProbe = {
        initialDelay     = "PT10S"
        period           = "PT5S"
        timeout          = "PT3S"
        failureThreshold = 3
        successThreshold = 1
      }
      requestSettings = {
        maxConcurrentRequestsPerInstance = var.concurrent_requests_per_instance
        requestTimeout                   = "PT5S"
      }
      scaleSettings = {
        scaleType = "Default"
      }
    }
  }
}

# All traffic goes to `main`. Traffic is set after the deployment exists (an endpoint cannot route to a deployment
# that is not there yet).
resource "azapi_update_resource" "ml_traffic" {
  count = local.serving_enabled ? 1 : 0

  type        = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints@2024-04-01"
  resource_id = azapi_resource.ml_endpoint[0].id
  body = {
    properties = {
      traffic = { (azapi_resource.ml_deployment[0].name) = 100 }
    }
  }
}

output "service_url" {
  description = "Scoring URL of the online endpoint (empty until the first deploy); POST with an Entra ID token."
  value       = local.serving_enabled ? azapi_resource.ml_endpoint[0].output.properties.scoringUri : ""
}
