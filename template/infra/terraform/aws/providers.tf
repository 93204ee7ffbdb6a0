provider "aws" {
  region = var.region

  # Every taggable resource gets these tags, so cost allocation and ownership never depend on a reviewer noticing
  # a missing tag block.
  default_tags {
    tags = local.default_tags
  }
}

locals {
  # Also read by tests/plan.tftest.hcl, which checks what every resource is tagged with.
  default_tags = {
    project     = var.project
    environment = var.environment
    owner       = var.owner
    cost_center = var.cost_center
    managed_by  = "terraform"
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}
