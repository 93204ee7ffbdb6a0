# Online serving: the FastAPI image on Azure Container Apps, HTTPS-only ingress on port 8000, probes on /health
# (liveness) and /ready (readiness, 503 until the model is loaded), scaled on in-flight requests.
#
# The ingress is internal by default: only apps in the same Container Apps environment (the organisation's
# callers deployed next to it) reach the service, so it runs without a key check of its own (AUTH_MODE=none).
# public_endpoint = true gives it an internet-facing HTTPS address: a deliberate choice, made in envs/<env>.tfvars,
# for a service whose callers authenticate some other way (docs/security.md).

variable "public_endpoint" {
  description = "Expose the service on the internet (external ingress). Off by default: reachable only inside the Container Apps environment."
  type        = bool
  default     = false
}

variable "min_replicas" {
  description = "Minimum replicas (0 scales to zero when idle: cheapest, but the first request after idling waits)."
  type        = number
  default     = 2
}

variable "max_replicas" {
  description = "Maximum replicas."
  type        = number
  default     = 10
}

variable "replica_cpu" {
  description = "vCPUs per replica (0.25 to 2; memory is twice as many GiB)."
  type        = number
  default     = 1
}

variable "concurrent_requests_per_replica" {
  description = "In-flight HTTP requests per replica above which Container Apps adds a replica."
  type        = number
  default     = 20
}

resource "azurerm_container_app" "service" {
  count = local.serving_enabled ? 1 : 0

  name                         = local.short_name
  resource_group_name          = azurerm_resource_group.main.name
  container_app_environment_id = azurerm_container_app_environment.main[0].id
  workload_profile_name        = "Consumption"
  # A new image creates a new revision that takes all traffic once it is ready; the previous one is kept inactive
  # for rollback (`az containerapp revision activate` or `make deploy IMAGE_TAG=<previous sha>`).
  revision_mode = "Single"
  tags          = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.runtime.id]
  }

  registry {
    server   = azurerm_container_registry.main.login_server
    identity = azurerm_user_assigned_identity.runtime.id
  }

  ingress {
    external_enabled           = var.public_endpoint
    target_port                = 8000
    transport                  = "http"
    allow_insecure_connections = false

    traffic_weight {
      latest_revision = true
      percentage      = 100
    }
  }

  # feature_store = feast: Feast's Redis connection string, resolved from Key Vault with the runtime identity
  dynamic "secret" {
    for_each = var.feature_store ? ["feature-store-redis"] : []
    content {
      name                = secret.value
      key_vault_secret_id = "${azurerm_key_vault.main.vault_uri}secrets/${secret.value}"
      identity            = azurerm_user_assigned_identity.runtime.id
    }
  }

  template {
    min_replicas = var.min_replicas
    max_replicas = var.max_replicas

    container {
      name   = "api"
      image  = local.image
      cpu    = var.replica_cpu
      memory = "${var.replica_cpu * 2}Gi"

      env {
        name  = "APP_ENV"
        value = var.environment
      }

      env {
        name  = "WEB_CONCURRENCY"
        value = tostring(max(1, floor(var.replica_cpu)))
      }

      env {
        name  = "AZURE_CLIENT_ID"
        value = azurerm_user_assigned_identity.runtime.client_id
      }
      # feature_store = feast: the feature store's configuration and the Redis connection (feature_store.tf)
      dynamic "env" {
        for_each = var.feature_store ? {
          FEATURE_STORE_YAML = "feature_repo/feature_store.cloud.yaml"
          FEATURE_STORE_URI  = "${azurerm_storage_account.main.primary_blob_endpoint}${azurerm_storage_container.main["data"].name}/feature_store"
        } : {}
        content {
          name  = env.key
          value = env.value
        }
      }
      dynamic "env" {
        for_each = var.feature_store ? ["feature-store-redis"] : []
        content {
          name        = "REDIS_CONNECTION_STRING"
          secret_name = env.value
        }
      }
      # serving/log_shipper.py uploads the closed inference log files to the data container (inference_log.tf).
      env {
        name  = "INFERENCE_LOG_URI"
        value = local.inference_log_uri
      }
      env {
        name  = "AZURE_STORAGE_ACCOUNT_NAME"
        value = azurerm_storage_account.main.name
      }
      env {
        name  = "INFERENCE_LOG_ROTATE_SECONDS"
        value = "60"
      }

      # Internal ingress is the boundary (or public_endpoint, the explicit choice): the service does not check keys.
      env {
        name  = "AUTH_MODE"
        value = "none"
      }

      liveness_probe {
        transport               = "HTTP"
        path                    = "/health"
        port                    = 8000
        initial_delay           = 5
        interval_seconds        = 10
        timeout                 = 3
        failure_count_threshold = 3
      }

      readiness_probe {
        transport               = "HTTP"
        path                    = "/ready"
        port                    = 8000
        interval_seconds        = 5
        timeout                 = 3
        failure_count_threshold = 3
        success_count_threshold = 1
      }
    }

    http_scale_rule {
      name                = "http-concurrency"
      concurrent_requests = tostring(var.concurrent_requests_per_replica)
    }
  }

  depends_on = [azurerm_role_assignment.runtime_acr_pull]
}

output "service_public" {
  description = "Whether the service has an internet-facing address (public_endpoint); `make smoke` calls it only then."
  value       = var.public_endpoint
}

output "service_url" {
  description = "HTTPS URL of the serving app (empty until the first deploy; an internal address unless public_endpoint)."
  value       = local.serving_enabled ? "https://${azurerm_container_app.service[0].ingress[0].fqdn}" : ""
}
