# Batch scoring: a Container Apps job on a cron schedule running the serving image with
# `python -m <package>.batch`, reading BATCH_INPUT_URI and writing BATCH_OUTPUT_URI in this environment's storage
# account as the runtime identity.

variable "batch_schedule" {
  description = "Cron expression (UTC) of the batch scoring job."
  type        = string
  default     = "0 3 * * *"
}

variable "batch_input_uri" {
  description = "BATCH_INPUT_URI of the job: az://<container>/<path> in this environment's storage account."
  type        = string
  default     = "az://data/batch/input/records.csv"
}

variable "batch_output_uri" {
  description = "BATCH_OUTPUT_URI of the job (batch output is deleted after 90 days, see storage.tf)."
  type        = string
  default     = "az://data/batch/output/predictions.csv"
}

variable "batch_cpu" {
  description = "vCPUs of the job's replica (0.25 to 2; memory is twice as many GiB)."
  type        = number
  default     = 1
}

variable "batch_timeout_seconds" {
  description = "Longest a run may take before it is stopped and counted as failed."
  type        = number
  default     = 3600
}

# The job reads its input and writes its output in the data container; created by the first (human) apply like
# every role assignment.
resource "azurerm_role_assignment" "runtime_data_contributor" {
  scope                = azurerm_storage_container.main["data"].id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.runtime.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_container_app_job" "batch" {
  count = local.serving_enabled ? 1 : 0

  name                         = "${local.short_name}-batch"
  location                     = azurerm_resource_group.main.location
  resource_group_name          = azurerm_resource_group.main.name
  container_app_environment_id = azurerm_container_app_environment.main[0].id
  workload_profile_name        = "Consumption"
  replica_timeout_in_seconds   = var.batch_timeout_seconds
  replica_retry_limit          = 1
  tags                         = local.tags

  schedule_trigger_config {
    cron_expression          = var.batch_schedule
    parallelism              = 1
    replica_completion_count = 1
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.runtime.id]
  }

  registry {
    server   = azurerm_container_registry.main.login_server
    identity = azurerm_user_assigned_identity.runtime.id
  }

  template {
    container {
      name    = "batch"
      image   = local.image
      cpu     = var.batch_cpu
      memory  = "${var.batch_cpu * 2}Gi"
      command = ["python", "-m", "${var.package_name}.batch"]

      env {
        name  = "APP_ENV"
        value = var.environment
      }

      env {
        name  = "BATCH_INPUT_URI"
        value = var.batch_input_uri
      }

      env {
        name  = "BATCH_OUTPUT_URI"
        value = var.batch_output_uri
      }

      # az:// URIs resolve against this account, signed in as the runtime identity (no keys).
      env {
        name  = "AZURE_STORAGE_ACCOUNT_NAME"
        value = azurerm_storage_account.main.name
      }

      env {
        name  = "AZURE_STORAGE_ANON"
        value = "false"
      }

      env {
        name  = "AZURE_CLIENT_ID"
        value = azurerm_user_assigned_identity.runtime.client_id
      }
    }
  }

  depends_on = [azurerm_role_assignment.runtime_acr_pull, azurerm_role_assignment.runtime_data_contributor]
}

output "service_url" {
  description = "Name of the scheduled batch job (empty until the first deploy); run it now with `az containerapp job start`."
  value       = local.serving_enabled ? azurerm_container_app_job.batch[0].name : ""
}
