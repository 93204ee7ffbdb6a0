terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.45"
    }
  }

  # Partial configuration: `make infra-init ENV=<env>` passes envs/<env>.backend.hcl (see README.md, "State").
  backend "azurerm" {}
}
