terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.45"
    }
    # Azure Resource Manager resources azurerm has no resource for (the managed online endpoint, the tracking
    # server's authentication): a module has one required_providers block, so it is declared here for every mode.
    azapi = {
      source  = "Azure/azapi"
      version = "~> 2.0"
    }
  }

  # Partial configuration: `make infra-init ENV=<env>` passes envs/<env>.backend.hcl (see README.md, "State").
  backend "azurerm" {}
}
