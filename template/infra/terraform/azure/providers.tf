# Credentials and the target subscription come from the environment, never from files: ARM_SUBSCRIPTION_ID (plus
# `az login` on a workstation) or, in GitHub Actions, ARM_CLIENT_ID / ARM_TENANT_ID / ARM_SUBSCRIPTION_ID with
# ARM_USE_OIDC=true (see README.md, "CI access").
provider "azurerm" {
  # Shared keys are disabled on the storage account: every data-plane call uses Entra ID, and the provider never
  # calls the blob/queue data plane itself (containers are managed through Azure Resource Manager), so the storage
  # firewall does not have to admit whoever runs Terraform.
  storage_use_azuread = true

  features {
    key_vault {
      # Purge protection is on: a destroyed vault stays soft-deleted for its retention period and is recovered by
      # the next apply instead of failing on a name clash.
      purge_soft_delete_on_destroy    = false
      recover_soft_deleted_key_vaults = true
    }

    resource_group {
      prevent_deletion_if_contains_resources = true
    }

    storage {
      data_plane_available = false
    }
  }
}

data "azurerm_client_config" "current" {}
