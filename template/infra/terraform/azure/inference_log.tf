# The sampled inference log: serving/log_shipper.py in the service uploads each closed file with the runtime
# managed identity (AZURE_CLIENT_ID) to az://data/inference/, where the drift check reads it. The role assignment's
# condition (Azure ABAC) limits every blob action of the identity in the data container to that prefix.

locals {
  inference_log_prefix = "inference/"
  inference_log_uri    = "az://${azurerm_storage_container.main["data"].name}/${local.inference_log_prefix}"
}

resource "azurerm_role_assignment" "runtime_writes_inference_log" {
  scope                = azurerm_storage_container.main["data"].id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.runtime.principal_id
  principal_type       = "ServicePrincipal"
  condition_version    = "2.0"
  condition            = <<-EOT
    (
      (
        !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'})
        AND !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'})
        AND !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'})
        AND !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'})
      )
      OR
      (
        @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringStartsWith '${local.inference_log_prefix}'
      )
    )
  EOT
}

output "inference_log_uri" {
  description = "Where the service's log shipper uploads the sampled inference log (INFERENCE_LOG_URI; the account is storage_account)."
  value       = local.inference_log_uri
}
